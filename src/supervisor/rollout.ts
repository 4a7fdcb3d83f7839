/**
 * One reload, as a state machine: which generation it rolls out, what it
 * covers (workers, custom processes), who waits for its result, and what
 * arrived while it ran (coalesced into exactly one follow-up). It owns every
 * decision of the reload: the canary, batches or the one-step switch, the
 * settle window, the abort rule and the completion check. The pool only
 * carries them out (start a replacement, promote it, hold or put back its
 * predecessor); the supervisor dispatches events to it and reports the end.
 *
 * The settle window (--settle): a new worker must stay up this long after it
 * became ready before the new generation counts as working. Rolling, a
 * replacement takes over only once it has; with the one-step switch the new
 * generation takes over at once, and when steered its predecessors are held
 * (out of the steered set, still listening) through the window, so that they
 * can be put back if it fails. Until one new worker has settled, any new
 * worker that exits aborts the reload; after that, failures are retried.
 */
import type { ControlReply } from "../control/protocol.ts";
import type { Child } from "../child/child.ts";
import type { SlotView, WorkerExit } from "./worker_pool.ts";
import { whenExited } from "./describe.ts";
/** What a reload covers and why it happens. */
export interface ReloadRequest {
  reason: string;
  files: string[];
  /** For a change: which rules chose what reloads (reload_scope.ts), for the log. */
  why?: string;
  workers: boolean;
  processes: boolean;
  /** With `processes`: only these (by name); undefined: every process that reloads with the code. */
  processNames?: string[];
  /** Called with the outcome (the control socket's `reload` waits on it). */
  reply?: (reply: ControlReply) => void;
}

/** What the rollout drives in the worker pool: mechanism, no decisions. */
export interface RolloutPool {
  view(): readonly SlotView[];
  startReplacement(id: number, generation: number): void;
  promote(id: number, hold?: boolean): void;
  standDown(id: number, hold?: boolean): void;
  cancelReplacement(id: number): void;
  steer(): void;
  holding(): boolean;
  releaseHeld(): void;
  putBack(): void;
  cancelReplacements(): void;
  outdated(generation: number): number;
}

/** What the rollout drives among the custom processes. */
export interface RolloutProcesses {
  /** Queues the restart of the processes that reload with the code. */
  queueReloads(names?: string[]): void;
  restarting(): boolean;
}

/** How a rollout replaces workers. */
export interface RolloutSettings {
  /** All new workers at once, switched in together (else --reload-batch at a time). */
  oneStep: boolean;
  reloadBatch: number;
  /** --settle: how long a new worker must stay up after it became ready. */
  settleMs: number;
  /** Steered: a held predecessor can serve again (it never stopped listening). */
  canPutBack: boolean;
}

/** Where a rollout stands after a step. */
export type RolloutState =
  | { state: "running" }
  | { state: "done" }
  /** `switched`: the new generation had taken over; `putBack`: the old one serves again. */
  | { state: "aborted"; why: string; summary: string; switched: boolean; putBack: boolean };

const RUNNING: RolloutState = { state: "running" };

export class Rollout {
  #phase: "workers" | "processes" = "workers";
  /** True once a new worker stayed up through the settle window (the canary passed). */
  #settled = false;
  /** With the one-step switch: when the new generation took over. */
  #switchedAt?: number;
  /** True once a newer reload is waiting: a switched generation's window is cut short. */
  #superseded = false;
  #processesQueued = false;
  #aborted?: Extract<RolloutState, { state: "aborted" }>;
  readonly #waiters: Array<(reply: ControlReply) => void> = [];
  #followUp?: ReloadRequest;

  constructor(
    readonly generation: number,
    readonly request: ReloadRequest,
    /** Clock time the rollout began. */
    readonly startedAt: number,
    readonly pool: RolloutPool,
    readonly processes: RolloutProcesses,
    readonly settings: RolloutSettings,
    /** True when workers were serving as it began: it replaces them (else it starts them). */
    readonly replacing: boolean,
  ) {
    if (request.reply) this.#waiters.push(request.reply);
    if (!request.workers) this.#phase = "processes";
  }

  /** One step toward the new generation; says whether the rollout runs on, is done or aborted. */
  advance(now: number): RolloutState {
    if (this.#aborted) return this.#aborted;
    if (this.#phase === "workers") {
      const workersDone = this.settings.oneStep ? this.#switchAll(now) : this.#roll(now);
      if (!workersDone) return RUNNING;
      this.#phase = "processes";
    }
    if (this.request.processes && !this.#processesQueued) {
      this.#processesQueued = true;
      this.processes.queueReloads(this.request.processNames);
    }
    return this.processes.restarting() ? RUNNING : { state: "done" };
  }

  /**
   * A worker exited. New code that exits before any of it has settled fails
   * the reload: it is aborted, and the old workers keep (or go back to)
   * serving. Returns true when it did (once some new code has settled, a
   * failure is an ordinary one, retried: false).
   */
  onWorkerExit(child: Child, exit: WorkerExit): boolean {
    if (exit.kind === "drained" || exit.kind === "unknown") return false;
    if (this.#aborted || this.#settled || child.spec.generation < this.generation) return false;
    const why = exit.kind === "replacement-failed"
      ? exit.why
      : exit.wasReady
      ? `worker ${child.spec.id} of generation ${this.generation} exited ` +
        whenExited(child, this.settings.settleMs)
      : `generation ${this.generation} failed`;
    const switched = this.#switchedAt !== undefined;
    // Only a steered worker kept its listener while held: others drain.
    const putBack = this.settings.canPutBack && this.pool.holding();
    if (putBack) this.pool.putBack();
    else {
      this.pool.cancelReplacements();
      if (this.pool.holding()) this.pool.releaseHeld();
    }
    this.#aborted = { state: "aborted", why, summary: exit.summary, switched, putBack };
    return true;
  }

  /**
   * A newer reload waits. Once the new generation has switched in, it is about
   * to be replaced anyway: its settle window ends now, so that the next save
   * never waits for the last one's window.
   */
  supersede(): void {
    if (this.#switchedAt !== undefined) this.#superseded = true;
  }

  /**
   * Stopping: everyone waiting hears `reply`, those of the follow-up too
   * (it will never run), and replacements not yet in service are let go (the
   * pool drains the rest).
   */
  cancel(reply: ControlReply): void {
    this.settle(reply);
    this.#followUp?.reply?.(reply);
    this.#followUp = undefined;
    this.pool.cancelReplacements();
  }

  /**
   * When the next settle window (of a new worker, or of the switch) ends
   * after `now`, or Infinity. Only future ones: a window already over would
   * wake the loop again and again while it waits for something else.
   */
  nextDeadline(now: number): number {
    if (this.#aborted || this.#phase !== "workers") return Infinity;
    const settle = this.#settleMs();
    const ends = this.#switchedAt !== undefined
      ? [this.#switchedAt + settle]
      : this.pool.view().flatMap((slot) => {
        const readyAt = slot.replacement?.readyAt;
        return readyAt === undefined ? [] : [readyAt + settle];
      });
    return Math.min(Infinity, ...ends.filter((end) => end > now));
  }

  /** The settle window, when there is something to protect (nothing served before: none). */
  #settleMs(): number {
    return this.replacing ? this.settings.settleMs : 0;
  }

  /**
   * Rolling: a replacement takes over its slot once it has settled; one (the
   * canary) until one has, then --reload-batch at a time. Returns true once
   * every slot runs the new generation and no old worker takes connections.
   */
  #roll(now: number): boolean {
    const settle = this.#settleMs();
    const slots = this.pool.view();
    let promoted = false;
    for (const slot of slots) {
      const next = slot.replacement;
      if (next?.state !== "ready" || next.spec.generation < this.generation) continue;
      if (now - next.readyAt! < settle) continue;
      // Held, not drained: its clients stay on it (their requests sent on, spread over every
      // serving worker) until the whole generation serves, and only then reconnect.
      this.pool.promote(slot.id, true);
      this.#settled = promoted = true;
    }
    if (promoted) this.pool.steer();
    // New workers in slots that had none (a crash, a scale up) settle too.
    for (const slot of slots) {
      const current = slot.current;
      if (current?.state !== "ready" || current.spec.generation < this.generation) continue;
      if (now - current.readyAt! >= settle) this.#settled = true;
    }
    const inFlight = slots.filter((slot) => slot.replacement).length;
    this.#startReplacements(now, (this.#settled ? this.settings.reloadBatch : 1) - inFlight);
    if (this.pool.outdated(this.generation) > 0) return false;
    if (this.pool.holding()) this.pool.releaseHeld();
    return this.pool.outdated(this.generation) === 0;
  }

  /**
   * One step: every new worker starts at once; the first that is ready takes
   * over, and every old worker leaves service with it (steered, they are
   * held through the settle window, then drain), so that no old code answers
   * once new code has; the other new workers join as they become ready.
   * Returns true once all serve and the window has passed.
   */
  #switchAll(now: number): boolean {
    const slots = this.pool.view();
    const isNewReady = (child?: Child) =>
      child?.state === "ready" && child.spec.generation >= this.generation;
    if (this.#switchedAt === undefined) {
      this.#startReplacements(now, Infinity);
      const replacing = slots.some((slot) =>
        slot.current !== undefined && slot.current.spec.generation < this.generation
      );
      // With old workers serving, the switch waits for a new one; with none, there is nothing to switch.
      if (replacing && !slots.some((slot) => isNewReady(slot.replacement))) return false;
      // Held: they can be put back (steered) while the window runs, and their clients reconnect
      // only once the whole new generation serves, spreading over all of it.
      const hold = true;
      for (const slot of slots) {
        if (!slot.current || slot.current.spec.generation >= this.generation) continue;
        if (isNewReady(slot.replacement)) this.pool.promote(slot.id, hold);
        else this.pool.standDown(slot.id, hold);
        // A recycle's replacement (old code) still starting must not take the slot later.
        if (slot.replacement && slot.replacement.spec.generation < this.generation) {
          this.pool.cancelReplacement(slot.id);
        }
      }
      this.pool.steer();
      this.#switchedAt = now;
    }
    let joined = false;
    for (const slot of slots) {
      if (!isNewReady(slot.replacement)) continue;
      this.pool.promote(slot.id);
      joined = true;
    }
    if (joined) this.pool.steer();
    if (!this.#superseded && now - this.#switchedAt < this.#settleMs()) return false;
    this.#settled = true;
    // Once every new worker serves (or a newer change takes over): the old ones drain.
    const complete = this.pool.view().every((slot) => !slot.replacement);
    if (this.pool.holding() && (complete || this.#superseded)) this.pool.releaseHeld();
    // Superseded: the next rollout starts now, and waits for these old workers at its own end.
    return this.#superseded || this.pool.outdated(this.generation) === 0;
  }

  /**
   * Starts up to `room` replacements for slots still running older code.
   * A slot left with no worker in service and an older replacement starting
   * (its rollout was superseded before that one was ready) has it let go
   * first: the pool then starts the newest code there.
   */
  #startReplacements(now: number, room: number): void {
    for (const slot of this.pool.view()) {
      if (!slot.current && slot.replacement && slot.replacement.spec.generation < this.generation) {
        this.pool.cancelReplacement(slot.id);
      }
    }
    for (const slot of this.pool.view()) {
      if (room <= 0) return;
      if (!slot.current || slot.current.spec.generation >= this.generation) continue;
      if (slot.replacement || now < slot.retryAt) continue;
      this.pool.startReplacement(slot.id, this.generation);
      room--;
    }
  }

  /** Remembers a trigger that arrived during this rollout. */
  queueFollowUp(request: ReloadRequest): void {
    const previous = this.#followUp;
    const waiters = [previous?.reply, request.reply].filter((r) => r !== undefined);
    this.#followUp = {
      reason: [...new Set([...(previous?.reason.split(", ") ?? []), request.reason])].join(", "),
      files: [...new Set([...(previous?.files ?? []), ...request.files])].sort(),
      // The follow-up's log line says why, as each queued request's did.
      why: [previous?.why, request.why].filter((why) => why !== undefined).join("; ") ||
        undefined,
      workers: (previous?.workers ?? false) || request.workers,
      processes: (previous?.processes ?? false) || request.processes,
      processNames: mergeNames(previous, request),
      reply: waiters.length === 0 ? undefined : (reply) => waiters.forEach((w) => w(reply)),
    };
  }

  /** The single rollout to run after this one, if anything arrived meanwhile. */
  get followUp(): ReloadRequest | undefined {
    return this.#followUp;
  }

  /** Tells everyone waiting how it ended. */
  settle(reply: ControlReply): void {
    for (const waiter of this.#waiters.splice(0)) waiter(reply);
  }

  /**
   * What happened, truthfully: `reloaded 4 workers in 312 ms (generation 7; 2
   * files: src/a.ts, src/b.ts)`; `generation 2 started 2 workers; all ready
   * in 140 ms (1 file: main.ts)` when nothing was serving before; and how
   * many are ready when some of the new workers failed, or were still
   * starting when a newer change superseded it.
   */
  summary(workers: number, ready: number, processes: number, now: number): string {
    const ms = Math.round(now - this.startedAt);
    const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
    const { files, reason } = this.request;
    const cause = files.length > 0 ? describeChanges(files) : reason;
    const extra = this.request.processes && processes > 0
      ? ` and ${processes} process${processes === 1 ? "" : "es"}`
      : "";
    if (!this.request.workers) {
      return `reloaded ${
        extra ? extra.slice(5) : "nothing"
      } in ${ms} ms (generation ${this.generation}; ${cause})`;
    }
    if (ready < workers && this.#superseded) {
      // Nothing failed: the rest were still starting when a newer change arrived, which replaces them.
      return `generation ${this.generation}: ${ready} of ${plural(workers, "worker")} ready in ` +
        `${ms} ms, when a newer change took over from it${
          extra ? `;${extra} reloaded` : ""
        } (${cause})`;
    }
    if (ready < workers) {
      return `generation ${this.generation}: ${ready} of ${plural(workers, "worker")} ready in ` +
        `${ms} ms, the others failed and are retried${
          extra ? `;${extra} reloaded` : ""
        } (${cause})`;
    }
    if (!this.replacing) {
      return `generation ${this.generation} started ${plural(workers, "worker")}${extra}; all ` +
        `ready in ${ms} ms (${cause})`;
    }
    return `reloaded ${
      plural(workers, "worker")
    }${extra} in ${ms} ms (generation ${this.generation}; ${cause})`;
  }
}

/** `3 files: src/a.ts, src/b.ts, src/c.ts` (at most 5 names); `verb` goes after "files". */
export function describeChanges(files: string[], verb = ""): string {
  const shown = files.slice(0, 5).join(", ");
  const more = files.length > 5 ? `, and ${files.length - 5} more` : "";
  const noun = files.length === 1 ? "file" : "files";
  return `${files.length} ${noun}${verb ? ` ${verb}` : ""}: ${shown}${more}`;
}

/** The processes two requests reload together: undefined (all) when either reloads all. */
function mergeNames(a: ReloadRequest | undefined, b: ReloadRequest): string[] | undefined {
  const all = [a, b].some((r) => r?.processes && r.processNames === undefined);
  if (all) return undefined;
  return [...new Set([...(a?.processNames ?? []), ...(b.processNames ?? [])])];
}
