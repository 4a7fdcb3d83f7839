/**
 * The instance's recent output, in memory: the supervisor's own log lines
 * and its children's, exactly as the supervisor prints them (with their
 * prefixes). `hotreload logs` reads it through the control socket; a
 * dashboard may read it through the same three methods.
 *
 * App output is hostile: a line may be megabytes long, binary, or one of a
 * flood. The buffer is bounded in lines and in bytes; a line longer than
 * {@link MAX_LINE_BYTES} is cut (and says so), control characters other than
 * tab and colour sequences are replaced, so that printing the buffer on a
 * terminal cannot drive it.
 */

/** Lines kept at most. */
export const MAX_LINES = 5000;
/** Bytes (UTF-8) kept at most, all lines together. */
export const MAX_BYTES = 1024 * 1024;
/** A longer line is cut to this many bytes (about). */
export const MAX_LINE_BYTES = 8 * 1024;

/** Called with each line pushed, after it is stored. */
export type OutputListener = (line: string) => void;

// C0 controls but tab, DEL, and C1 controls; ESC is handled apart (colours stay).
// deno-lint-ignore no-control-regex
const CONTROL = /[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f-\x9f]|\x1b(?!\[[0-9;]*m)/g;

/** UTF-8 length of `text`, without encoding it. */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** `line` made safe to keep and print: bounded, one line, no terminal controls but colours. */
export function sanitizeLine(line: string, maxBytes = MAX_LINE_BYTES): string {
  // Replaced first: a replacement is 3 bytes, and the bound is on what is kept.
  let text = line.replace(CONTROL, "\uFFFD");
  let cut = 0;
  // UTF-16 units are at most 3 UTF-8 bytes each: shorter than maxBytes / 3 is always within.
  if (text.length > maxBytes / 3) {
    let bytes = 0;
    let end = 0;
    while (end < text.length) {
      const code = text.charCodeAt(end);
      const pair = code >= 0xd800 && code <= 0xdbff;
      const size = code < 0x80 ? 1 : code < 0x800 ? 2 : pair ? 4 : 3;
      if (bytes + size > maxBytes) break;
      bytes += size;
      end += pair ? 2 : 1;
    }
    if (end < text.length) {
      cut = utf8Length(text.slice(end));
      text = text.slice(0, end);
    }
  }
  return cut > 0 ? `${text}… (${cut} more bytes cut)` : text;
}

/** A bounded buffer of output lines that listeners can follow. */
export class OutputBuffer {
  readonly #lines: string[] = [];
  readonly #sizes: number[] = [];
  #head = 0;
  #bytes = 0;
  #dropped = 0;
  readonly #listeners = new Set<OutputListener>();

  /** `maxLines` and `maxBytes` bound what is kept (the oldest lines go first). */
  constructor(
    readonly maxLines: number = MAX_LINES,
    readonly maxBytes: number = MAX_BYTES,
    readonly maxLineBytes: number = MAX_LINE_BYTES,
  ) {}

  /** Stores one line (sanitized and bounded) and hands it to every listener. */
  push(line: string): void {
    const text = sanitizeLine(line.endsWith("\n") ? line.slice(0, -1) : line, this.maxLineBytes);
    const size = utf8Length(text) + 1;
    this.#lines.push(text);
    this.#sizes.push(size);
    this.#bytes += size;
    while (
      this.#lines.length - this.#head > this.maxLines ||
      (this.#bytes > this.maxBytes && this.#lines.length - this.#head > 1)
    ) {
      this.#bytes -= this.#sizes[this.#head];
      this.#head++;
      this.#dropped++;
    }
    // Compact now and then, so that pushing stays O(1) on average.
    if (this.#head > 1024 && this.#head * 2 > this.#lines.length) {
      this.#lines.splice(0, this.#head);
      this.#sizes.splice(0, this.#head);
      this.#head = 0;
    }
    for (const listener of this.#listeners) {
      try {
        listener(text);
      } catch { /* a listener's failure is its own */ }
    }
  }

  /** The last `n` lines kept (all of them when `n` is larger), oldest first. */
  lines(n: number = this.maxLines): string[] {
    const count = Math.max(0, Math.min(Math.floor(n), this.#lines.length - this.#head));
    return this.#lines.slice(this.#lines.length - count);
  }

  /** Calls `listener` with every line pushed from now on; returns what unsubscribes it. */
  subscribe(listener: OutputListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Lines no longer kept because the buffer was full. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Bytes kept, all lines together (each with its newline). */
  get bytes(): number {
    return this.#bytes;
  }
}

/**
 * This process's output: what the supervisor prints (src/log/mod.ts and
 * relay.ts push every line here). One per process, like its stdout.
 */
export const supervisorOutput: OutputBuffer = new OutputBuffer();
