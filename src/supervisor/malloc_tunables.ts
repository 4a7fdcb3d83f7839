/**
 * Whether a worker starts with hotreload's GLIBC_TUNABLES
 * (WORKER_MALLOC_TUNABLES in runtime/protocol.ts, which says why). Only
 * where the app cannot tell: its preload removes the variable before the
 * app runs, which it can only do with env permission for it; without that
 * permission the app cannot read it either, but a process it starts would
 * inherit it. So a worker gets the tunables when:
 * - the user sets no GLIBC_TUNABLES, in the environment or an --env-file
 *   (Deno reads env files after glibc has started, so the file's would not
 *   apply, and would not override ours: the app would see ours where plain
 *   `deno run` shows the file's; an empty value counts as set, and is how
 *   to turn the tunables off);
 * - and the Deno flags grant env permission for it (`-A`, `--allow-env`,
 *   `-E`, `--allow-env=…GLIBC_TUNABLES…` or a `PREFIX*` that matches it) and
 *   neither deny nor ignore it, or they give the app no way to start a
 *   process (no `--allow-run`, `--allow-ffi` or `-A`). A permission set
 *   (`-P`) comes from the config file, so with one there are none.
 */
import { envFiles, envFilesAssign } from "./env_files.ts";

/** The variable glibc reads its tunables from. */
export const TUNABLES = "GLIBC_TUNABLES";

/** Whether a worker with environment `env`, Deno flags `denoFlags`, in `cwd`, gets the tunables. */
export function tunesMalloc(
  env: Record<string, string>,
  { denoFlags, cwd }: { denoFlags: string[]; cwd: string },
): boolean {
  if (env[TUNABLES] !== undefined) return false;
  if (envFilesAssign(envFiles(denoFlags), cwd, TUNABLES)) return false;
  if (denoFlags.some((flag) => flagIs(flag, "permission-set", "P"))) return false;
  const all = denoFlags.some((flag) => flag === "-A" || flag === "--allow-all");
  const readable = (all || covers(denoFlags, "allow-env", "E")) &&
    !covers(denoFlags, "deny-env") && !covers(denoFlags, "ignore-env");
  if (readable) return true; // so the preload can remove it
  // The app cannot read it: only a process it starts could see it.
  return !all && !denoFlags.some((flag) => flagIs(flag, "allow-run") || flagIs(flag, "allow-ffi"));
}

/** Whether `flag` is `--long`, `--long=…`, `-s` or `-s=…`. */
function flagIs(flag: string, long: string, short?: string): boolean {
  const names = [`--${long}`, ...(short ? [`-${short}`] : [])];
  return names.some((name) => flag === name || flag.startsWith(`${name}=`));
}

/**
 * Whether the flags `--long` / `-s` name TUNABLES: bare (every variable), or
 * in their list, exactly or by a `PREFIX*` wildcard.
 */
function covers(denoFlags: string[], long: string, short?: string): boolean {
  return denoFlags.some((flag) => {
    if (!flagIs(flag, long, short)) return false;
    const at = flag.indexOf("=");
    if (at === -1) return true;
    return flag.slice(at + 1).split(",").some((entry) =>
      entry === TUNABLES || (entry.endsWith("*") && TUNABLES.startsWith(entry.slice(0, -1)))
    );
  });
}
