import process from "node:process";

/**
 * The time the supervisor's core reads and waits on. The real one is
 * `performance.now()` and `setTimeout`; unit tests drive the core with a fake
 * one whose time moves only when the test says so.
 */
export interface Clock {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void;
}

/** The real clock. */
export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

/**
 * CPU time this process has used, in milliseconds (getrusage: every thread).
 * What a piece of work cost, where the clock would also count the time a
 * busy machine kept the supervisor waiting for a core.
 */
export function cpuTimeMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
