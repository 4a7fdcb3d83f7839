/**
 * The supervisor's single inbox. Signals, child messages, exits, file changes
 * and control requests are all pushed here; only the loop takes them out.
 */
export class EventQueue<T> {
  #items: T[] = [];
  #wake?: () => void;

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  /** The next event, or undefined when `timeoutMs` passes first. */
  async next(timeoutMs: number): Promise<T | undefined> {
    if (this.#items.length === 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        if (Number.isFinite(timeoutMs)) timer = setTimeout(resolve, Math.max(0, timeoutMs));
      });
      this.#wake = undefined;
      clearTimeout(timer);
    }
    return this.#items.shift();
  }
}
