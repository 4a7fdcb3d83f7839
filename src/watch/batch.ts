/**
 * Coalescing of changes into one batch, and the single trailing debounce.
 *
 * Kinds combine by comparing the state before the batch with the state at
 * its end: existed before and exists now → "changed" (so removed+added is
 * "changed"); existed and is gone → "removed" (changed+removed too); new and
 * exists → "added" (added+changed too); new and gone (added then removed
 * within one batch) → dropped, since nothing the program could have loaded
 * changed.
 *
 * @module
 */
import type { Change, ChangeKind } from "./types.ts";

interface Entry {
  before: boolean;
  now: boolean;
}

/** Accumulates changes for the next batch. */
export class ChangeSet {
  #map = new Map<string, Entry>();

  /** Number of paths recorded (including ones that will cancel out). */
  get size(): number {
    return this.#map.size;
  }

  /** Record one observed change of `path`. */
  record(path: string, kind: ChangeKind): void {
    const e = this.#map.get(path);
    if (e === undefined) {
      this.#map.set(path, { before: kind !== "added", now: kind !== "removed" });
    } else {
      e.now = kind !== "removed";
    }
  }

  /** Take the batch: deduplicated, final kinds, sorted by path; empties the set. */
  take(): Change[] {
    const out: Change[] = [];
    for (const [path, e] of this.#map) {
      if (e.before && e.now) out.push({ path, kind: "changed" });
      else if (e.before) out.push({ path, kind: "removed" });
      else if (e.now) out.push({ path, kind: "added" });
    }
    this.#map.clear();
    out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    return out;
  }
}

/**
 * A trailing debounce: `fire` runs `delayMs` after the last `touch()`. So a
 * stream that never pauses is still delivered, it also fires once `maxWaitMs`
 * have passed since the first touch of the burst.
 */
export class Debounce {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #first = 0;
  readonly #delay: number;
  readonly #maxWait: number;
  readonly #fire: () => void;

  constructor(delayMs: number, fire: () => void, maxWaitMs = Math.max(1000, delayMs * 10)) {
    this.#delay = delayMs;
    this.#maxWait = maxWaitMs;
    this.#fire = fire;
  }

  /** Something changed: (re)start the quiet period. */
  touch(): void {
    const now = performance.now();
    if (this.#timer === undefined) this.#first = now;
    else clearTimeout(this.#timer);
    const wait = Math.max(0, Math.min(this.#delay, this.#first + this.#maxWait - now));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#fire();
    }, wait);
  }

  /** Drop a pending fire. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
