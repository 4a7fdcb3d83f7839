/**
 * Splits a byte stream into text lines: the supervisor reads its children's
 * output with it, a custom process its supervisor's messages. Dependency-free,
 * like everything under src/runtime/. A last line without a newline is still
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
