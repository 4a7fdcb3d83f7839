/**
 * --max-memory: a worker whose memory (RSS) stays above the limit, two
 * samples in a row, is marked for recycling (replaced ready first, like
 * --max-requests). Sampled every --memory-check-interval, from the loop.
 */
import type { Child } from "../child/child.ts";
import type { WorkerPool } from "./worker_pool.ts";
import type { World } from "./world.ts";

/** Consecutive samples above --max-memory before a worker is recycled ("stays above"). */
const SAMPLES_OVER_LIMIT = 2;

export class MemoryLimit {
  readonly #samplesOverLimit = new WeakMap<Child, number>();
  #nextSampleAt = 0;

  constructor(
    private readonly options: { maxMemory?: number; memoryCheckInterval: number },
    private readonly world: Pick<World, "usage">,
    private readonly workers: Pick<WorkerPool, "serving" | "markForRecycle">,
  ) {}

  /** Samples the serving workers when due; marks those that stay above the limit. */
  sample(now: number): void {
    const limitMB = this.options.maxMemory;
    if (limitMB === undefined || now < this.#nextSampleAt) return;
    this.#nextSampleAt = now + this.options.memoryCheckInterval;
    for (const child of this.workers.serving()) {
      const usage = this.world.usage(child);
      if (!usage) continue;
      const overMB = usage.rssBytes / 2 ** 20;
      const over = overMB > limitMB ? (this.#samplesOverLimit.get(child) ?? 0) + 1 : 0;
      this.#samplesOverLimit.set(child, over);
      if (over >= SAMPLES_OVER_LIMIT) {
        this.workers.markForRecycle(
          child,
          `uses ${Math.round(overMB)} MB, above --max-memory ${limitMB} MB`,
        );
      }
    }
  }

  /** When the next sample is due, or Infinity without a limit. */
  nextDeadline(): number {
    return this.options.maxMemory === undefined ? Infinity : this.#nextSampleAt;
  }
}
