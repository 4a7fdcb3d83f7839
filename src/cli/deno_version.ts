/**
 * The oldest Deno hotreload supports, and the check of a deno against it:
 * the supervisor's own (`Deno.version.deno`) and the one that runs the
 * children (asked with `<deno> --version`).
 *
 * Below it nothing fails in a way that names the cause: under Deno 2.4–2.6
 * `run` dies on `file.tryLockSync is not a function` while claiming the
 * instance (and leaves `.hotreload/<name>/lock` behind); workers run by
 * Deno 2.0 die on `--preload` and are reported as "failed: no output". So a
 * deno that is too old is refused first, in one line that names it, its
 * version and the one needed, before anything is created or started.
 */
import { HotreloadError } from "../errors.ts";

/** A Deno version; only the numbers count (a canary's or an rc's suffix does not). */
export interface DenoVersion {
  major: number;
  minor: number;
  patch: number;
}

/**
 * The oldest supported Deno: 2.7 is the first whose `Deno.FsFile` has the
 * `tryLockSync` that claims an instance, and the oldest the suite passes on
 * (2.7.14, 2.8.3 and 2.9.6 were tried).
 */
export const OLDEST_DENO: DenoVersion = { major: 2, minor: 7, patch: 0 };

/** How long a deno may take to say its version (a cold start on a loaded machine included). */
const VERSION_TIMEOUT_MS = 15_000;

/** "2.7" (the patch is left out while it is 0: that is how people say it). */
function minimumText(): string {
  const { major, minor, patch } = OLDEST_DENO;
  return patch === 0 ? `${major}.${minor}` : `${major}.${minor}.${patch}`;
}

/**
 * The version in `deno --version`'s first line ("deno 2.5.6 (stable, ...)"),
 * or in a bare version ("2.9.6", "2.8.0-rc.1"); undefined when there is none.
 */
export function parseDenoVersion(text: string): DenoVersion | undefined {
  const match = text.trim().match(/^(?:deno )?(\d+)\.(\d+)\.(\d+)/);
  if (!match) return undefined;
  return { major: Number(match[1]), minor: Number(match[2]), patch: Number(match[3]) };
}

/** True when `version` is at least the oldest supported one. */
export function isSupported(version: DenoVersion): boolean {
  const order = [
    version.major - OLDEST_DENO.major,
    version.minor - OLDEST_DENO.minor,
    version.patch - OLDEST_DENO.patch,
  ].find((difference) => difference !== 0) ?? 0;
  return order >= 0;
}

/** The one line for a deno that is too old; `source` says where its path came from. */
export function tooOldMessage(path: string, found: string, source?: string): string {
  return `hotreload needs Deno ${minimumText()} or newer; ${path}${
    source ? ` (from ${source})` : ""
  } is ${found}`;
}

/** Throws when the Deno running this process is too old: checked before any command. */
export function checkOwnDeno(
  version = Deno.version.deno,
  path: () => string = () => Deno.execPath(),
): void {
  const parsed = parseDenoVersion(version);
  // A version we cannot read is not refused: a build we do not know is better run than blocked.
  if (parsed && !isSupported(parsed)) throw new HotreloadError(tooOldMessage(path(), version));
}

/**
 * Throws when the deno at `path`, which will run the children, is too old or
 * cannot be run at all. The Deno running this supervisor was checked already:
 * it is not asked again.
 */
export async function checkChildDeno(path: string, source?: string): Promise<void> {
  if (!Deno.build.standalone && path === Deno.execPath()) return;
  const from = source ? ` (from ${source})` : "";
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command(path, {
      args: ["--version"],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(VERSION_TIMEOUT_MS),
    }).output();
  } catch (error) {
    const why = error instanceof Error && error.name === "AbortError"
      ? `it did not answer --version within ${VERSION_TIMEOUT_MS / 1000} s`
      : (error as Error).message;
    throw new HotreloadError(`cannot run the deno at ${path}${from}: ${why}`);
  }
  const stdout = new TextDecoder().decode(output.stdout);
  const version = output.success ? parseDenoVersion(stdout) : undefined;
  if (!version) {
    const said = (stdout + new TextDecoder().decode(output.stderr)).trim().split("\n")[0] ?? "";
    throw new HotreloadError(
      `${path}${from} does not run as Deno: \`${path} --version\` ` +
        (output.success ? "exited 0" : `exited with code ${output.code}`) +
        (said ? ` and printed "${said.slice(0, 200)}"` : " and printed nothing"),
    );
  }
  if (!isSupported(version)) {
    const found = `${version.major}.${version.minor}.${version.patch}`;
    throw new HotreloadError(tooOldMessage(path, found, source));
  }
}
