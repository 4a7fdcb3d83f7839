/**
 * Checks the Deno flags before anything starts: a dry `deno run` of an empty
 * module with exactly the flags the children will get. Whatever deno itself
 * refuses (`--location=notaurl`, a missing import map, `-A --allow-net`, an
 * unknown V8 flag) is reported in one line, instead of workers that
 * crash-loop on it. It costs one short process (about 20 ms).
 */
import { HotreloadError } from "../errors.ts";

const EMPTY_MODULE = "data:text/javascript,";

/** Throws a one-line HotreloadError when deno refuses `flags`; `what` names whose flags they are. */
export async function checkDenoFlags(
  deno: string,
  flags: string[],
  cwd: string,
  what = "the Deno flags",
): Promise<void> {
  const result = await new Deno.Command(deno, {
    args: ["run", "--unstable-net", ...flags, EMPTY_MODULE],
    cwd,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).output();
  if (result.success) return;
  const text = new TextDecoder().decode(result.stderr);
  const line = text.split("\n").find((l) => l.startsWith("error:"))?.slice(6).trim() ??
    text.trim().split("\n")[0] ?? `exit code ${result.code}`;
  throw new HotreloadError(
    `deno refuses ${what} (${flags.join(" ")}): ${line}; fix them and try again`,
  );
}
