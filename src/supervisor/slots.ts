/**
 * The slot mechanism workers and custom processes share (SlotGroup): starting
 * a slot's child, start and drain deadlines, the next time something is due,
 * retries, status rows, and how a failure is reported. Their differences are
 * small policies: what a start deadline means (a worker that is not ready in
 * time is killed; a process that neither says ready nor fails counts as
 * started), and each child's grace.
 */
import type { Child, ChildListener, ChildSpec, Spawn } from "../child/child.ts";
import type { StatusRow } from "../control/protocol.ts";
import { log } from "../log/mod.ts";
import { Backoff, type BackoffPolicy } from "./backoff.ts";
import type { Clock } from "./clock.ts";
import type { Metrics } from "./metrics.ts";
import { formatMs, lastWords } from "./describe.ts";
import { FailureMemory, hintLine, worthReporting } from "./failures.ts";

/** What a slot group is handed by the supervisor: the seam to the OS, and shared counters. */
export interface SlotSeam {
  listener: ChildListener;
  spawn: Spawn;
  clock: Clock;
  /** Counts restarts, for --metrics. */
  counters?: Metrics;
  backoff?: BackoffPolicy;
}

/** How one kind of slot treats its children's deadlines. */
export interface SlotPolicy {
  role: "worker" | "process";
  /** How long a child may stay `starting`. */
  startMs: number;
  /** What happens when it stays longer. */
  onStartDeadline(child: Child): void;
  /** How long a draining child may take, after its close window, before it is killed. */
  graceMs(child: Child): number;
  /** How long a draining child keeps its idle connections before its grace counts (workers). */
  windowMs?(child: Child): number;
  /** --timeout: a ready child silent this long has a blocked event loop (0: never checked). */
  timeoutMs: number;
  /** What happens then (replaced ready-first, or restarted); called once per child. */
  onUnresponsive(child: Child): void;
}

/** What every slot holds: its child, and when it may start one again. */
export interface Slot {
  current?: Child;
  backoff: Backoff;
  /** When the slot may start a child again after a failure (clock time). */
  retryAt: number;
  /** The last error, to show each distinct one once. */
  failures: FailureMemory;
}

/**
 * The slot machine workers and custom processes share: starting a slot's
 * child, deadlines, the next time something is due, and retries. A subclass
 * adds its slots' own fields and its policy.
 */
/**
 * True when every request a draining worker still has open is one it sent
 * on to a serving worker: new code's answers, which the old worker's grace
 * does not cut (it exits once they end).
 */
function onlyRelaying(child: Child): boolean {
  return child.relaying > 0 && child.openRequests === child.relaying;
}

export abstract class SlotGroup<S extends Slot, O extends SlotSeam> {
  protected readonly slots: S[] = [];
  protected abstract readonly policy: SlotPolicy;
  /** Children found unresponsive (a blocked event loop): acted on once, never drained. */
  protected readonly unresponsive = new WeakSet<Child>();

  constructor(protected readonly options: O) {}

  /** Every live child of the group. */
  abstract children(): Child[];

  /** Applies the start and drain deadlines; a child is killed (and that logged) once. */
  enforceDeadlines(now: number): void {
    const policy = this.policy;
    for (const child of this.children()) {
      if (child.killedAt !== undefined) continue; // killed once, logged once; its exit follows
      if (child.state === "starting" && now - child.startedAt >= policy.startMs) {
        policy.onStartDeadline(child);
      }
      if (
        policy.timeoutMs > 0 && child.state === "ready" && !this.unresponsive.has(child) &&
        now - child.lastSeenAt >= policy.timeoutMs
      ) {
        this.unresponsive.add(child);
        policy.onUnresponsive(child);
      }
      const grace = policy.graceMs(child);
      const window = policy.windowMs?.(child) ?? 0;
      if (
        child.state === "draining" && child.drainStartedAt !== undefined &&
        now - child.drainStartedAt >= window + grace && !onlyRelaying(child)
      ) {
        const open = child.openRequests ? ` with ${child.openRequests} request(s) still open` : "";
        log.warn(
          `${policy.role}.killed`,
          `${child.spec.label} (pid ${child.pid}) still busy after its ${grace} ms grace${open}; killed`,
          { role: policy.role, id: child.spec.id, pid: child.pid, open: child.openRequests },
        );
        child.kill();
      }
    }
  }

  /** The nearest deadline of the children and of the slots' retries (and `more`), or Infinity. */
  nextDeadline(now: number, more: number[] = []): number {
    const deadlines = [...this.slots.map((slot) => slot.retryAt), ...more].filter((at) => at > now);
    const policy = this.policy;
    for (const child of this.children()) {
      if (child.killedAt !== undefined) continue;
      if (child.state === "starting") deadlines.push(child.startedAt + policy.startMs);
      if (child.state === "draining" && child.drainStartedAt !== undefined) {
        const graceEnd = child.drainStartedAt + (policy.windowMs?.(child) ?? 0) +
          policy.graceMs(child);
        // Past its grace while it only relays new code's answers: looked at again each second.
        deadlines.push(graceEnd > now || !onlyRelaying(child) ? graceEnd : now + 1000);
      }
      if (policy.timeoutMs > 0 && child.state === "ready" && !this.unresponsive.has(child)) {
        deadlines.push(child.lastSeenAt + policy.timeoutMs);
      }
    }
    return Math.min(Infinity, ...deadlines);
  }

  /** New code (of `generation`): slots waiting out a backoff start at once, and its failures count afresh. */
  retryNow(generation: number): void {
    for (const slot of this.slots) {
      slot.retryAt = 0;
      slot.backoff.reset();
      slot.failures.newCode(generation);
    }
  }

  /** What a new slot starts with. */
  protected newSlot(): Slot {
    return {
      backoff: new Backoff(this.options.backoff),
      retryAt: 0,
      failures: new FailureMemory(),
    };
  }

  /**
   * Starts the child `spec` describes for `slot`. When the command cannot
   * start at all (the deno binary vanished, no more processes), the slot
   * waits out its backoff like after a crash, and the failure is logged.
   */
  protected start(slot: S, spec: ChildSpec): Child | undefined {
    try {
      return this.options.spawn(spec, this.options.listener);
    } catch (error) {
      const delay = slot.backoff.failed(0);
      slot.retryAt = this.options.clock.now() + delay;
      log.error(
        `${spec.role}.spawn-failed`,
        `cannot start ${spec.label}: ${(error as Error).message}; retrying in ${formatMs(delay)}`,
        { role: spec.role, id: spec.id },
      );
      return undefined;
    }
  }
}

/**
 * Failures in a row after which a slot counts as `errored` (the service had
 * been up): it is still retried at the capped backoff. Without watching, the
 * same number of failed first starts ends the run (nobody is there to fix it).
 */
export const ERRORED_AFTER = 5;

/**
 * Keeps a slot's `errored` mark after a failure of its `child`: set (and
 * said once) at ERRORED_AFTER failures in a row once the service was up;
 * cleared when a stable run (30 s up) has reset the backoff.
 */
export function markErrored(
  slot: Slot & { errored: boolean },
  child: Child,
  summary: string,
  everReady: boolean,
): void {
  const { failures } = slot.backoff;
  if (failures < ERRORED_AFTER) slot.errored = false;
  if (!everReady || slot.errored || failures < ERRORED_AFTER) return;
  slot.errored = true;
  log.error(
    `${child.spec.role}.errored`,
    `${child.spec.label} failed ${failures} times in a row (${summary}); ` +
      `marked errored, retrying every ${formatMs(slot.backoff.policy.maxMs)} at most`,
    { role: child.spec.role, id: child.spec.id, pid: child.pid },
  );
}

/** Memory and CPU of a child, when it can be sampled. */
export type Usage = (child: Child) => { rssBytes: number; cpuPercent: number } | undefined;

/** A status row for a live child. */
export function childRow(
  role: "worker" | "process",
  id: number | string,
  child: Child,
  restarts: number,
  usage: Usage,
  now: number,
): StatusRow {
  const sample = usage(child);
  return {
    role,
    id,
    pid: child.pid,
    state: child.state === "exited" ? "stopped" : child.state,
    generation: child.spec.generation,
    uptimeMs: Math.round(child.uptimeMs(now)),
    restarts,
    rssBytes: sample?.rssBytes ?? null,
    cpuPercent: sample ? Math.round(sample.cpuPercent * 10) / 10 : null,
    requests: role === "worker" ? child.requestsServed : null,
    open: child.state === "draining" ? child.openRequests ?? null : null,
    ports: role === "worker" ? [...child.ports].sort((a, b) => a - b) : null,
  };
}

/** A status row for a slot with no child (waiting out a backoff, errored, or down). */
export function emptyRow(
  role: "worker" | "process",
  id: number | string,
  state: StatusRow["state"],
  restarts: number,
): StatusRow {
  return {
    role,
    id,
    pid: null,
    state,
    generation: null,
    uptimeMs: null,
    restarts,
    rssBytes: null,
    cpuPercent: null,
    requests: null,
    open: null,
    ports: null,
  };
}

/**
 * Reports a child's unplanned exit: each distinct error once (the child's
 * held-back start-up output, then one line with the flag a missing
 * permission calls for), the same error again as one line at the 2nd, 4th,
 * 8th... time. `sameAsOtherSlot`: another slot just showed this error.
 * Returns how many times in a row this slot failed this way.
 */
export function reportFailure(
  child: Child,
  failures: FailureMemory,
  { why, delay, restarted = true, backoff, sameAsOtherSlot = () => 0 }: {
    why: string;
    delay: number;
    /** False: the caller ends something instead (a takeover); no "restarting in" then. */
    restarted?: boolean;
    backoff: Backoff;
    /** How many slots this error hit, this one included, when another showed it; else 0. */
    sameAsOtherSlot?: (signature: string | undefined) => number;
  },
): number {
  const role = child.spec.role;
  const words = lastWords(child.tail.lines());
  const times = failures.record(words, child.spec.generation);
  const hits = times === 1 ? sameAsOtherSlot(failures.signature) : 0;
  const shownElsewhere = hits > 0;
  child.releaseOutput(times === 1 && !shownElsewhere);
  // No backoff (an old generation's worker, replaced with new code): no "in 0 ms (failure 0)".
  const restart = !restarted
    ? "not restarted"
    : delay > 0
    ? `restarting in ${formatMs(delay)}`
    : "restarting now";
  const fields = {
    role,
    id: child.spec.id,
    pid: child.pid,
    restartInMs: delay,
  };
  const who = `${child.spec.label} (pid ${child.pid})`;
  if (shownElsewhere) {
    const generation = child.spec.generation === undefined
      ? ""
      : ` of generation ${child.spec.generation}`;
    log.warn(
      `${role}.exited`,
      `${who} failed the same way (${hits} ${role}s${generation} so far); ${restart}`,
      { ...fields, hits },
    );
  } else if (times === 1) {
    log.warn(
      `${role}.exited`,
      `${who} ${why} after ${formatMs(child.uptimeMs())}; ${restart}` +
        `${backoff.failures > 0 ? ` (failure ${backoff.failures})` : ""}${hintLine(words)}`,
      { ...fields, lastOutput: words },
    );
  } else if (worthReporting(times)) {
    log.warn(`${role}.exited`, `${who} crashed again, same error (×${times}); ${restart}`, fields);
  }
  return times;
}

/** The status rows of a pool's workers: its slots' (or their backoff), the held and the retiring. */
export function workerRows(
  slots: readonly (Pick<Slot, "current"> & {
    id: number;
    restarts: number;
    replacement?: Child;
    errored: boolean;
  })[],
  held: readonly Child[],
  retiring: readonly Child[],
  usage: Usage,
  now: number,
): StatusRow[] {
  const rows: StatusRow[] = [];
  for (const slot of slots) {
    for (const child of [slot.current, slot.replacement]) {
      if (child) rows.push(childRow("worker", slot.id, child, slot.restarts, usage, now));
    }
    if (!slot.current && !slot.replacement) {
      rows.push(emptyRow("worker", slot.id, slot.errored ? "errored" : "backoff", slot.restarts));
    }
  }
  for (const child of held) {
    const row = childRow("worker", child.spec.id, child, 0, usage, now);
    rows.push(child.state === "ready" ? { ...row, state: "held" } : row);
  }
  for (const child of retiring) rows.push(childRow("worker", child.spec.id, child, 0, usage, now));
  return rows;
}
