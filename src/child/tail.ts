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
