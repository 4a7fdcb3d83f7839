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
 * A burst that has touched this many paths is a build or a checkout, not a
 * save: it waits for a longer quiet, and may last longer before it goes out
 * anyway. A build writes its files with pauses (a bundler between chunks, a
 * busy machine) longer than a save's debounce, and one cut into several
 * batches started a reload per batch, the first of them on a half-written
 * build (a build rewriting 200 files over 3 s started 6).
 */
const BUILD_PATHS = 10;
/**
 * The quiet a build's batch waits for; also that of a burst that looks like
 * a build from its first event: one that removed a file (a build that
 * empties its output directory first, as Vite's `emptyOutDir` does, writes
 * each module again 10-25 ms later, and a batch that went out in between
 * reloaded onto a missing file, then again), or one that wrote in a named
 * directory a `.gitignore` lists (build output by both counts: filter.ts),
 * whose first files would otherwise go out as a save of their own.
 */
const BUILD_QUIET_MS = 300;
/** How long a build's burst may last before its batch goes out anyway. */
const BUILD_MAX_WAIT_MS = 10_000;

/**
 * The share of the debounce a save waits for once every file it wrote was
 * closed (or landed by a rename, as an atomic save does): that file is whole,
 * and only another file of the same save can follow. Measured (`deno task
 * bench saves`): the longest gap between two files of one save was 3.9 ms
 * (`deno fmt` over 41 files), so 8 ms of the default 20 keeps twice that
 * margin; a write still open waits the whole debounce. The edit loop is the
 * quiet time shorter (docs/benchmarks.md).
 */
export const SETTLED_SHARE = 0.4;

/**
 * The quiet that ends a burst that has touched `paths` paths (`build`: it
 * looks like one; `settled`: every write in it was closed).
 */
export function quietFor(
  debounceMs: number,
  paths: number,
  build = false,
  settled = false,
): number {
  if (paths >= BUILD_PATHS || build) return Math.max(debounceMs, BUILD_QUIET_MS);
  return settled ? Math.ceil(debounceMs * SETTLED_SHARE) : debounceMs;
}

/** How long a burst that has touched `paths` paths and never pauses may last. */
export function maxWaitFor(debounceMs: number, paths: number): number {
  return paths >= BUILD_PATHS
    ? Math.max(BUILD_MAX_WAIT_MS, debounceMs * 10)
    : Math.max(1000, debounceMs * 10);
}

/**
 * A trailing debounce: `fire` runs once the burst has been quiet for its
 * quiet time (`delayMs`, longer for a build: {@linkcode quietFor}). So a
 * stream that never pauses is still delivered, it also fires once its
 * longest wait ({@linkcode maxWaitFor}) has passed since the first touch.
 */
export class Debounce {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #first = 0;
  #build = false;
  readonly #delay: number;
  readonly #fire: () => void;
  readonly #schedule: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;

  /** `schedule` is setTimeout (injectable for tests). */
  constructor(
    delayMs: number,
    fire: () => void,
    schedule: (fn: () => void, ms: number) => ReturnType<typeof setTimeout> = setTimeout,
  ) {
    this.#delay = delayMs;
    this.#fire = fire;
    this.#schedule = schedule;
  }

  /**
   * Something changed; the burst has touched `paths` paths, this change
   * looks like a `build`'s (see BUILD_QUIET_MS), and every write in it is
   * `settled` (closed: see SETTLED_SHARE) or not: (re)start the quiet period.
   */
  touch(paths = 1, build = false, settled = false): void {
    const now = performance.now();
    if (this.#timer === undefined) {
      this.#first = now;
      this.#build = false;
    } else clearTimeout(this.#timer);
    this.#build ||= build;
    const left = this.#first + maxWaitFor(this.#delay, paths) - now;
    const quiet = quietFor(this.#delay, paths, this.#build, settled);
    this.#timer = this.#schedule(() => {
      this.#timer = undefined;
      this.#fire();
    }, Math.max(0, Math.min(quiet, left)));
  }

  /** True while a fire is pending. */
  get pending(): boolean {
    return this.#timer !== undefined;
  }

  /** Drop a pending fire. */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
