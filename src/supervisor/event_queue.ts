/**
 * The supervisor's single inbox. Signals, child messages, exits, file changes
 * and control requests are all pushed here; only the loop takes them out.
 */
import type { Clock } from "./clock.ts";

export class EventQueue<T> {
  #items: T[] = [];
  #wake?: () => void;

  constructor(readonly clock: Clock) {}

  push(item: T): void {
    this.#items.push(item);
    this.#wake?.();
  }

  /** The next event, or undefined when `timeoutMs` passes first. */
  async next(timeoutMs: number): Promise<T | undefined> {
    if (this.#items.length === 0) {
      let cancel = () => {};
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        if (Number.isFinite(timeoutMs)) {
          cancel = this.clock.setTimer(resolve, Math.max(0, timeoutMs));
        }
      });
      this.#wake = undefined;
      cancel();
    }
    return this.#items.shift();
  }
}
