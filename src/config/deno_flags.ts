/**
 * The `deno run` flags hotreload passes through to every worker, and how many
 * values each takes, so that `--import-map x.json main.ts` is not mistaken for
 * an entry named `x.json`. Taken from `deno run --help` of Deno 2.9.
 */

/** `none`: a switch. `optional`: a value only as `--flag=value`. `required`: `--flag value` or `--flag=value`. */
export type Arity = "none" | "optional" | "required";

const LONG: Record<string, Arity> = {
  "allow-all": "none",
  "allow-read": "optional",
  "allow-write": "optional",
  "allow-net": "optional",
  "allow-env": "optional",
  "allow-sys": "optional",
  "allow-run": "optional",
  "allow-ffi": "optional",
  "allow-import": "optional",
  "allow-scripts": "optional",
  "deny-read": "optional",
  "deny-write": "optional",
  "deny-net": "optional",
  "deny-env": "optional",
  "deny-sys": "optional",
  "deny-run": "optional",
  "deny-ffi": "optional",
  "deny-import": "optional",
  "ignore-env": "optional",
  "ignore-read": "optional",
  "permission-set": "optional",
  "no-prompt": "none",
  "check": "optional",
  "no-check": "optional",
  "import-map": "required",
  "no-remote": "none",
  "no-npm": "none",
  "node-modules-dir": "optional",
  "node-modules-linker": "required",
  "vendor": "optional",
  "config": "required",
  "no-config": "none",
  "reload": "optional",
  "lock": "optional",
  "no-lock": "none",
  "frozen-lockfile": "optional",
  "frozen": "optional",
  "cert": "required",
  "unsafely-ignore-certificate-errors": "optional",
  "min-dep-age": "required",
  "inspect": "optional",
  "inspect-brk": "optional",
  "inspect-wait": "optional",
  "inspect-publish-uid": "required",
  "cached-only": "none",
  "location": "required",
  "v8-flags": "optional",
  "seed": "required",
  "preload": "required",
  "require": "required",
  "conditions": "required",
  "env-file": "optional",
  "no-code-cache": "none",
  "coverage": "optional",
  "use-env-proxy": "none",
  "quiet": "none",
  "log-level": "required",
  "unstable": "none",
};

const SHORT: Record<string, Arity> = {
  A: "none",
  R: "optional",
  W: "optional",
  N: "optional",
  E: "optional",
  S: "optional",
  I: "optional",
  P: "optional",
  r: "optional",
  q: "none",
  c: "required",
  L: "required",
};

/** `deno run` flags that make no sense under hotreload, with what to do instead. */
const REFUSED: Record<string, string> = {
  "hmr": "hotreload reloads workers itself; drop --hmr",
  "watch-exclude": "use hotreload's --ignore <glob> instead",
  "no-clear-screen": "hotreload never clears the screen; drop --no-clear-screen",
};

/** Every long `deno run` flag hotreload passes through, without its dashes. */
export const DENO_LONG_FLAGS: readonly string[] = Object.keys(LONG);

/**
 * How many values the Deno flag `token` (e.g. `--allow-net`, `-c`) takes, or
 * undefined when Deno has no such flag. Throws for flags hotreload refuses.
 */
export function denoFlagArity(token: string): Arity | undefined {
  if (token.startsWith("--")) {
    const name = token.slice(2).split("=")[0];
    if (name in REFUSED) throw new Error(`--${name} is not supported: ${REFUSED[name]}`);
    if (name.startsWith("unstable-")) return "none";
    return Object.hasOwn(LONG, name) ? LONG[name] : undefined;
  }
  if (/^-[A-Za-z](=.*)?$/.test(token)) {
    const name = token[1];
    return Object.hasOwn(SHORT, name) ? SHORT[name] : undefined;
  }
  return undefined;
}
