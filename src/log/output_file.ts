/**
 * A detached instance's output on disk: `.hotreload/<name>/output.log`, one
 * line per line of the output buffer, rotated at {@link MAX_FILE_BYTES} to
 * `output.log.1` (one old file kept), so that it never grows without bound.
 * `hotreload logs` reads it when the instance is no longer running.
 */
import type { OutputBuffer } from "./output_buffer.ts";

/** The file's name in the instance's directory. */
export const OUTPUT_FILE = "output.log";
/** Size at which the file is rotated (the old one, `.1`, replaces any older one). */
export const MAX_FILE_BYTES = 4 * 1024 * 1024;

const encoder = new TextEncoder();

/** Opens `path` for appending, never through a link (a link there is replaced). */
function openOwn(path: string): Deno.FsFile {
  try {
    if (!Deno.lstatSync(path).isFile) Deno.removeSync(path);
  } catch { /* none yet */ }
  return Deno.openSync(path, { append: true, create: true, mode: 0o600 });
}

/**
 * Appends every line pushed to `buffer` to `dir/output.log` from now on;
 * returns what stops it. A failing write (disk full) drops the line, never
 * the instance.
 */
export function attachOutputFile(
  dir: string,
  buffer: OutputBuffer,
  maxBytes = MAX_FILE_BYTES,
): () => void {
  const path = `${dir}/${OUTPUT_FILE}`;
  let file: Deno.FsFile | undefined;
  let size = 0;
  try {
    file = openOwn(path);
    size = file.statSync().size;
  } catch {
    file = undefined;
  }
  const unsubscribe = buffer.subscribe((line) => {
    try {
      if (!file) return;
      const bytes = encoder.encode(line + "\n");
      if (size > 0 && size + bytes.length > maxBytes) {
        file.close();
        file = undefined;
        Deno.renameSync(path, `${path}.1`);
        file = openOwn(path);
        size = 0;
      }
      for (let written = 0; written < bytes.length;) {
        written += file.writeSync(bytes.subarray(written));
      }
      size += bytes.length;
    } catch { /* dropped */ }
  });
  return () => {
    unsubscribe();
    file?.close();
    file = undefined;
  };
}

/** Reads at most `max` bytes from the end of a regular file (never through a link). */
function tailOf(path: string, max: number): string | undefined {
  try {
    if (!Deno.lstatSync(path).isFile) return undefined;
    const file = Deno.openSync(path, { read: true });
    try {
      const size = file.statSync().size;
      const start = Math.max(0, size - max);
      file.seekSync(start, Deno.SeekMode.Start);
      const bytes = new Uint8Array(size - start);
      let read = 0;
      while (read < bytes.length) {
        const n = file.readSync(bytes.subarray(read));
        if (n === null) break;
        read += n;
      }
      let text = new TextDecoder().decode(bytes.subarray(0, read));
      // Started mid-line: drop the partial one.
      if (start > 0) text = text.slice(text.indexOf("\n") + 1);
      return text;
    } finally {
      file.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * The last `n` lines of an output file (and of its rotated `.1` when the
 * current one holds fewer), or undefined when there is none.
 */
export function lastLinesOfFile(path: string, n: number): string[] | undefined {
  const current = tailOf(path, 2 * 1024 * 1024);
  if (current === undefined) return undefined;
  let lines = current.split("\n");
  if (lines.at(-1) === "") lines.pop();
  if (lines.length < n) {
    const older = tailOf(`${path}.1`, 2 * 1024 * 1024)?.split("\n") ?? [];
    if (older.at(-1) === "") older.pop();
    lines = [...older, ...lines];
  }
  return n === 0 ? [] : lines.slice(-n);
}
