/**
 * `--check` for children. With `--preload`, `deno run --check` type-checks only
 * the preload, not the entry (measured with Deno 2.9.6). So when the user asks
 * for `--check`, a child first runs `deno check` on its entry with the flags
 * that shape module resolution, and only then `exec`s `deno run`: a type error
 * makes the child exit before it is ready, and a reload is aborted with the
 * compiler's message in the child's last lines.
 */
import { denoFlagArity } from "../config/deno_flags.ts";

/** Flags of `deno run` that `deno check` accepts and that matter to type-checking. */
const CHECK_FLAGS = new Set([
  "import-map",
  "no-remote",
  "no-npm",
  "node-modules-dir",
  "vendor",
  "node-modules-linker",
  "config",
  "c",
  "no-config",
  "reload",
  "r",
  "lock",
  "no-lock",
  "frozen-lockfile",
  "frozen",
  "cert",
  "unsafely-ignore-certificate-errors",
  "min-dep-age",
  "cached-only",
  "location",
  "seed",
  "require",
  "conditions",
  "allow-import",
  "I",
  "deny-import",
]);

function flagName(token: string): string {
  return token.replace(/^--?/, "").split("=")[0];
}

/**
 * The tokens of `denoFlags` whose names are in `names` (or start with
 * `unstable-`), each with its value when that comes as the next token.
 */
export function resolutionFlags(denoFlags: string[], names: ReadonlySet<string>): string[] {
  const args: string[] = [];
  for (let i = 0; i < denoFlags.length; i++) {
    const token = denoFlags[i];
    const name = flagName(token);
    if (!names.has(name) && !name.startsWith("unstable-")) continue;
    args.push(token);
    const separateValue = denoFlagArity(token) === "required" && !token.includes("=") &&
      !/^-[A-Za-z].+/.test(token);
    if (separateValue && i + 1 < denoFlags.length) args.push(denoFlags[++i]);
  }
  return args;
}

/** The `deno check` arguments for `entry`, or undefined when `--check` was not given. */
export function checkArguments(denoFlags: string[], entry: string): string[] | undefined {
  const check = denoFlags.find((flag) => flag === "--check" || flag.startsWith("--check="));
  if (!check) return undefined;
  const args = check === "--check=all" ? ["--all"] : [];
  return [...args, ...resolutionFlags(denoFlags, CHECK_FLAGS), entry];
}

// $0 is deno, "$@" the `deno run` arguments; the check arguments come one per
// line in HOTRELOAD_CHECK_ARGS (split on newlines only, no globbing).
const SCRIPT = `set -f
IFS='
'
"$0" check $HOTRELOAD_CHECK_ARGS || exit $?
unset IFS
exec "$0" "$@"`;

/** Wraps `deno <runArgs>` so that `deno check` runs first, when asked for. */
export function withTypeCheck(
  deno: string,
  runArgs: string[],
  checkArgs: string[] | undefined,
  env: Record<string, string>,
): { command: string; args: string[]; env: Record<string, string> } {
  if (!checkArgs) return { command: deno, args: runArgs, env };
  return {
    command: "/bin/sh",
    args: ["-c", SCRIPT, deno, ...runArgs],
    env: { ...env, HOTRELOAD_CHECK_ARGS: checkArgs.join("\n") },
  };
}
