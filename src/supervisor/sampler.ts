/**
 * Samples children's memory (RSS) and CPU from /proc, for `status` and for
 * `--max-memory` recycling. CPU % is measured between two samples of the same
 * child (or over its whole life for the first one).
 */
import type { Child } from "../child/child.ts";
import { procStat } from "../child/os.ts";

/** What one sample says about a child. */
export interface ChildUsage {
  rssBytes: number;
  /** Percent of one core since the previous sample. */
  cpuPercent: number;
  /** CPU time (user + system) over the child's whole life. */
  cpuSeconds: number;
}

const PAGE_BYTES = 4096;
const TICKS_PER_SECOND = 100;

interface Previous {
  ticks: number;
  at: number;
}

function readProc(
  pid: number,
  stat: (pid: number) => string[] | undefined,
): { rssBytes: number; ticks: number } | undefined {
  const fields = stat(pid);
  if (fields === undefined) return undefined;
  // Fields 14/15 (utime, stime) and 24 (rss, in pages), counted from 1.
  return {
    ticks: Number(fields[11]) + Number(fields[12]),
    rssBytes: Number(fields[21]) * PAGE_BYTES,
  };
}

export class UsageSampler {
  readonly #previous = new WeakMap<Child, Previous>();

  /** `stat`: /proc/<pid>/stat's fields (child/os.ts); `now`: the clock children's start times are on. */
  constructor(
    readonly stat: (pid: number) => string[] | undefined = procStat,
    readonly now: () => number = () => performance.now(),
  ) {}

  /** Samples a live child; undefined when it is gone. */
  sample(child: Child): ChildUsage | undefined {
    const now = this.now();
    const proc = readProc(child.pid, this.stat);
    if (!proc) return undefined;
    const previous = this.#previous.get(child) ?? { ticks: 0, at: child.startedAt };
    this.#previous.set(child, { ticks: proc.ticks, at: now });
    const seconds = (now - previous.at) / 1000;
    const cpuPercent = seconds > 0
      ? (100 * (proc.ticks - previous.ticks) / TICKS_PER_SECOND) / seconds
      : 0;
    return {
      rssBytes: proc.rssBytes,
      cpuPercent: Math.max(0, cpuPercent),
      cpuSeconds: proc.ticks / TICKS_PER_SECOND,
    };
  }
}
