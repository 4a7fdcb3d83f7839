/**
 * Splits a byte stream into text lines. A last line without a newline is still
 * delivered when the stream ends, so a crashing child's final words are kept.
 */
export async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  try {
    for await (const chunk of stream) {
      pending += decoder.decode(chunk, { stream: true });
      let start = 0;
      let newline: number;
      while ((newline = pending.indexOf("\n", start)) !== -1) {
        onLine(pending.slice(start, newline).replace(/\r$/, ""));
        start = newline + 1;
      }
      pending = pending.slice(start);
    }
  } catch {
    // The pipe broke (child killed mid-write): flush what we have.
  }
  pending += decoder.decode();
  if (pending !== "") onLine(pending);
}

/** Keeps the last `size` lines, for crash reports. */
export class LineTail {
  #lines: string[] = [];
  constructor(readonly size = 20) {}

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.size) this.#lines.shift();
  }

  lines(): string[] {
    return [...this.#lines];
  }
}
