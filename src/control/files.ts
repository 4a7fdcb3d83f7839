/**
 * Files in the runtime directory, written and removed safely: a reader never
 * sees half a file, and a link there is replaced or left alone, never
 * followed. Shared by instance_dir.ts and worker_records.ts.
 */
import { HotreloadError } from "../errors.ts";

/** A whole number from `min` to `max`: what a sane pid, start time or count in a record is. */
export const isWhole = (value: unknown, min: number, max = Number.MAX_SAFE_INTEGER) =>
  Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;

/** A one-line error for a failed file operation on the runtime directory. */
export function fsError(what: string, path: string, error: unknown): HotreloadError {
  const reason = error instanceof Deno.errors.PermissionDenied
    ? "permission denied (is the directory read-only?)"
    : (error as Error).message.split("\n")[0].replace(/, (open|mkdir|rename|write)\b.*$/, "");
  return new HotreloadError(`cannot ${what} ${path}: ${reason}`);
}

/** Writes a file by write-then-rename: a reader never sees half of it, and a link is replaced, never followed. */
export function writeFileAtomic(path: string, text: string): void {
  const temporary = `${path}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(temporary, text, { mode: 0o600, createNew: true });
    Deno.renameSync(temporary, path);
  } catch (error) {
    try {
      Deno.removeSync(temporary);
    } catch { /* never written */ }
    throw fsError("write", path, error);
  }
}

/** Removes `path` when it is a regular file or socket (never through a link). */
export function removeOwnFile(path: string): void {
  try {
    const info = Deno.lstatSync(path);
    if (info.isFile || info.isSocket) Deno.removeSync(path);
  } catch { /* already gone */ }
}
