/**
 * Restart delays for a child that keeps exiting: 100 ms doubling up to 15 s,
 * forgotten once a child has stayed up for 30 s.
 */
export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
  /** Uptime after which a child counts as stable and its failures are forgotten. */
  stableMs: number;
}

/** The default policy. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 100, maxMs: 15_000, stableMs: 30_000 };

/** Tracks consecutive failures of one slot and says how long to wait before the next start. */
export class Backoff {
  #failures = 0;
  constructor(readonly policy: BackoffPolicy = DEFAULT_BACKOFF) {}

  /** Records an exit after `uptimeMs` and returns the delay before the next start. */
  failed(uptimeMs: number): number {
    if (uptimeMs >= this.policy.stableMs) this.#failures = 0;
    const delay = Math.min(this.policy.maxMs, this.policy.initialMs * 2 ** this.#failures);
    this.#failures++;
    return delay;
  }

  /** Forgets earlier failures: new code gets a fresh start. */
  reset(): void {
    this.#failures = 0;
  }

  /** Consecutive failures so far. */
  get failures(): number {
    return this.#failures;
  }
}
