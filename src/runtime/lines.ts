/**
 * Splits a byte stream into text lines: the supervisor reads its children's
 * output with it, a custom process its supervisor's messages. Dependency-free,
 * like everything under src/runtime/. A last line without a newline is still
 * delivered when the stream ends, so a crashing child's final words are kept.
 *
 * Children are not trusted to print sensible lines: each chunk is searched
 * only once (linear time however long a line grows), and a line longer than
 * `maxLineBytes` is delivered in pieces, each but the last marked
 * {@link LINE_CUT_MARK}, so memory stays bounded too.
 */

/** Default longest line, in bytes, before it is cut into marked pieces. */
export const MAX_LINE_BYTES = 64 * 1024;

/** Appended to every piece of an over-long line except its last. */
export const LINE_CUT_MARK = " [line cut: continues on the next line]";

const NEWLINE = 10;

/**
 * Calls `onLine` for every line of `stream`. An exception thrown by `onLine`
 * is passed to `onError` (default: ignored) and never stops the reading: a
 * reader that stops would leave the writer blocked on a full pipe.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
  { maxLineBytes = MAX_LINE_BYTES, onError = (_error: unknown) => {}, signal, lineStart }: {
    maxLineBytes?: number;
    /**
     * A byte that always starts a new line: the text before it, if any, is
     * delivered as a line of its own. Frames begin with one (NUL), so no
     * text printed before a frame can make the frame's line long enough to be cut.
     */
    lineStart?: number;
    onError?: (error: unknown) => void;
    /** Stops reading (and cancels the stream) when aborted. */
    signal?: AbortSignal;
  } = {},
): Promise<void> {
  const decoder = new TextDecoder();
  const parts: Uint8Array[] = [];
  let partBytes = 0;
  const deliver = (line: string) => {
    try {
      onLine(line);
    } catch (error) {
      onError(error);
    }
  };
  // A cut may split a character: only a line's real end finishes the decoder.
  const flush = (cut: boolean) => {
    let text = "";
    for (const part of parts) text += decoder.decode(part, { stream: true });
    if (!cut) text += decoder.decode();
    parts.length = 0;
    partBytes = 0;
    if (cut) return deliver(text + LINE_CUT_MARK);
    deliver(text.endsWith("\r") ? text.slice(0, -1) : text);
  };
  const take = (bytes: Uint8Array) => {
    // Cut over-long lines into pieces of at most maxLineBytes.
    while (partBytes + bytes.length > maxLineBytes) {
      const room = maxLineBytes - partBytes;
      parts.push(bytes.subarray(0, room));
      partBytes += room;
      flush(true);
      bytes = bytes.subarray(room);
    }
    if (bytes.length > 0) {
      parts.push(bytes);
      partBytes += bytes.length;
    }
  };
  const reader = stream.getReader();
  const cancel = () => reader.cancel().catch(() => {});
  signal?.addEventListener("abort", cancel, { once: true });
  if (signal?.aborted) cancel();
  try {
    while (true) {
      const { value: chunk, done } = await reader.read();
      if (done) break;
      let start = 0;
      while (true) {
        const newline = chunk.indexOf(NEWLINE, start);
        const marker = lineStart === undefined ? -1 : chunk.indexOf(lineStart, start);
        if (marker !== -1 && (newline === -1 || marker < newline)) {
          // The marker byte starts a line: end the one before it, if it has text.
          take(chunk.subarray(start, marker));
          if (partBytes > 0) flush(false);
          take(chunk.subarray(marker, marker + 1));
          start = marker + 1;
          continue;
        }
        if (newline === -1) break;
        take(chunk.subarray(start, newline));
        flush(false);
        start = newline + 1;
      }
      // The stream may reuse its buffer: keep a copy of the unfinished part.
      if (start < chunk.length) take(chunk.slice(start));
    }
  } catch {
    // The pipe broke (child killed mid-write): deliver what we have.
  } finally {
    signal?.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
  if (partBytes > 0) flush(false);
}
