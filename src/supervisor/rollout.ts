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
import type { ControlReply, StatusReport } from "../control/protocol.ts";
import type { Child } from "../child/child.ts";
import type { RunConfig } from "../config/settings.ts";
import { log } from "../log/mod.ts";
import type { WorkerExit, WorkerPool } from "./worker_pool.ts";
import type { ProcessSet } from "./process_set.ts";
import { whenExited } from "./describe.ts";
import { afterAbort, reloadSummary, type Report } from "./report.ts";
import type { Clock } from "./clock.ts";
import type { Connection } from "./world.ts";

import { coalesce, type ReloadRequest, staleForSpares } from "./reload_request.ts";
/** What the rollout drives in the worker pool: mechanism, no decisions. */
export type RolloutPool = Pick<
  WorkerPool,
  | "view"
  | "startReplacement"
  | "promote"
  | "standDown"
  | "cancelReplacement"
  | "steer"
  | "holding"
  | "handOffHeld"
  | "releaseHeld"
  | "putBack"
  | "cancelReplacements"
  | "outdated"
>;

/** What the rollout drives among the custom processes. */
export interface RolloutProcesses {
  /** Queues the restart of the processes that reload with the code. */
  queueReloads(names?: string[]): void;
  restarting(): boolean;
}

/** How a rollout replaces workers. */
export interface RolloutSettings {
  /** All new workers together (steered: the lead first), switched in together (else --reload-batch at a time). */
  oneStep: boolean;
  reloadBatch: number;
  /** --settle: how long a new worker must stay up after it became ready. */
  settleMs: number;
  /** Steered: a held predecessor can serve again (it never stopped listening). */
  canPutBack: boolean;
  /** One step: the lead starts alone (LEAD_START_MS); steered only. */
  leadFirst: boolean;
}

/** Where a rollout stands after a step. */
export type RolloutState =
  | { state: "running" }
  | { state: "done" }
  /** `switched`: the new generation had taken over; `putBack`: the old one serves again. */
  | { state: "aborted"; why: string; summary: string; switched: boolean; putBack: boolean };

/**
 * One step: how long the first new worker (the lead) starts alone at most.
 * The others start once it listens (or sooner, when it is ready or gone), so
 * that it gets the CPU to itself while it loads: 4 new workers released at
 * once on 2 cores were each 30-40 ms from their handshake to listening,
 * against 9 ms for one alone, and the switch waits for the first. Measured
 * side by side (bench/edit.ts, 3 rounds of 8 edits): every answer new 64 ->
 * 57 ms steered, 66 -> 56 ms not steered, 4 workers; under wrk load, p99
 * while reloading alike steered (a hello app: 12.6-20.0 against 12.6-19.2
 * ms; an app reading its request: 55-83 against 62-86 ms), but not without
 * steering (that app: 77-114 against 63-76 ms), where the lead took its
 * share of new connections from the moment it listened: steered only. A
 * lead that takes longer to listen (an app that connects to its database
 * first) holds the others back no more than this.
 */
export const LEAD_START_MS = 20;

const RUNNING: RolloutState = { state: "running" };
const DONE: RolloutState = { state: "done" };

/** A one-step switch: when the new generation took over, and whether a newer reload waits. */
interface Switch {
  at: number;
  /** A newer reload waits: the switched generation's settle window is cut short. */
  superseded: boolean;
  /** True once the held predecessors were told that the whole new generation serves. */
  handedOff: boolean;
}

/** Where a rollout is: one stage at a time, each holding what only it needs. */
type Stage =
  /** Rolling: one replacement (the canary) until one has settled, then --reload-batch at a time. */
  | { kind: "rolling" }
  /**
   * One step: the new workers starting (the lead first, from `leadAt`: LEAD_START_MS); the old
   * generation serves until one is ready.
   */
  | { kind: "starting"; leadAt?: number }
  /** One step: the new generation took over; the old one is held (or drained) through the window. */
  | { kind: "switched"; switch: Switch }
  /** Every slot runs the new generation: the custom processes that reload with the code restart. */
  | { kind: "processes"; queued: boolean; switch?: Switch }
  | { kind: "done"; switch?: Switch }
  | { kind: "aborted"; outcome: Extract<RolloutState, { state: "aborted" }> };

export class Rollout {
  #stage: Stage;
  /** True once a new worker stayed up through the settle window (the canary passed). */
  #settled = false;
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
    this.#stage = !request.workers
      ? { kind: "processes", queued: false }
      : settings.oneStep
      ? { kind: "starting" }
      : { kind: "rolling" };
  }

  /** One step toward the new generation; says whether the rollout runs on, is done or aborted. */
  advance(now: number): RolloutState {
    const stage = this.#stage;
    if (stage.kind === "aborted") return stage.outcome;
    if (stage.kind === "done") return DONE;
    if (stage.kind !== "processes") {
      const workersDone = stage.kind === "rolling" ? this.#roll(now) : this.#switchAll(now);
      if (!workersDone) return RUNNING;
      this.#stage = { kind: "processes", queued: false, switch: this.#switch() };
    }
    const processes = this.#stage as Extract<Stage, { kind: "processes" }>;
    if (this.request.processes && !processes.queued) {
      processes.queued = true;
      this.processes.queueReloads(this.request.processNames);
    }
    if (this.processes.restarting()) return RUNNING;
    this.#stage = { kind: "done", switch: processes.switch };
    return DONE;
  }

  /**
   * True once every new worker serves (one step: from the switch on, when the
   * last one joined; rolling: once every slot is new): the serving workers
   * change no more in this rollout.
   */
  get everyNewServes(): boolean {
    const kind = this.#stage.kind;
    if (kind === "processes" || kind === "done") return true;
    return kind === "switched" && this.pool.view().every((slot) => !slot.replacement);
  }

  /** The one-step switch, once the new generation has taken over. */
  #switch(): Switch | undefined {
    const stage = this.#stage;
    return stage.kind === "switched" || stage.kind === "processes" || stage.kind === "done"
      ? stage.switch
      : undefined;
  }

  /**
   * A worker exited. New code that exits before any of it has settled fails
   * the reload: it is aborted, and the old workers keep (or go back to)
   * serving. Returns true when it did (once some new code has settled, a
   * failure is an ordinary one, retried: false).
   */
  onWorkerExit(child: Child, exit: WorkerExit): boolean {
    if (exit.kind === "drained" || exit.kind === "unknown") return false;
    const aborted = this.#stage.kind === "aborted";
    if (aborted || this.#settled || child.spec.generation < this.generation) return false;
    const why = exit.kind === "replacement-failed"
      ? exit.why
      : exit.wasReady
      ? `worker ${child.spec.id} of generation ${this.generation} exited ` +
        whenExited(child, this.settings.settleMs)
      : `generation ${this.generation} failed`;
    const switched = this.#switch() !== undefined;
    // Only a steered worker kept its listener while held: others drain.
    const putBack = this.settings.canPutBack && this.pool.holding();
    if (putBack) this.pool.putBack();
    else {
      this.pool.cancelReplacements();
      if (this.pool.holding()) this.pool.releaseHeld();
    }
    const outcome = { state: "aborted" as const, why, summary: exit.summary, switched, putBack };
    this.#stage = { kind: "aborted", outcome };
    return true;
  }

  /**
   * A newer reload waits. Once the new generation has switched in, it is about
   * to be replaced anyway: its settle window ends now, so that the next save
   * never waits for the last one's window.
   */
  supersede(): void {
    const switched = this.#switch();
    if (switched) switched.superseded = true;
  }

  /** True when a newer reload cut this one short after its switch. */
  get superseded(): boolean {
    return this.#switch()?.superseded ?? false;
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
    const stage = this.#stage;
    if (stage.kind !== "rolling" && stage.kind !== "starting" && stage.kind !== "switched") {
      return Infinity;
    }
    const settle = this.#settleMs();
    const ends = stage.kind === "switched"
      ? [stage.switch.at + settle]
      : this.pool.view().flatMap((slot) => {
        const readyAt = slot.replacement?.readyAt;
        return readyAt === undefined ? [] : [readyAt + settle];
      });
    // The lead's head start ends: the others start then, if it has not listened yet.
    if (stage.kind === "starting" && stage.leadAt !== undefined && this.#notStarted() > 0) {
      ends.push(stage.leadAt + LEAD_START_MS);
    }
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
    // Older replacements are not this rollout's: #startReplacements lets them go.
    const inFlight =
      slots.filter((slot) =>
        slot.replacement && slot.replacement.spec.generation >= this.generation
      ).length;
    this.#startReplacements(now, (this.#settled ? this.settings.reloadBatch : 1) - inFlight);
    if (this.pool.outdated(this.generation) > 0) return false;
    if (this.pool.holding()) this.pool.releaseHeld();
    return this.pool.outdated(this.generation) === 0;
  }

  /**
   * One step: every new worker starts (steered, the lead first: #roomWhileStarting); the first ready takes
   * over, and every old worker leaves service with it (steered, they are
   * held through the settle window, then drain), so that no old code answers
   * once new code has; the other new workers join as they become ready.
   * Returns true once all serve and the window has passed.
   */
  #switchAll(now: number): boolean {
    const slots = this.pool.view();
    const isNewReady = (child?: Child) =>
      child?.state === "ready" && child.spec.generation >= this.generation;
    if (this.#stage.kind === "starting") {
      this.#startReplacements(now, this.#roomWhileStarting(now, this.#stage));
      const replacing = slots.some((slot) =>
        slot.current !== undefined && slot.current.spec.generation < this.generation
      );
      // With old workers serving, the switch waits for a new one; with none, there is nothing to switch.
      if (replacing && !slots.some((slot) => isNewReady(slot.replacement))) return false;
      // Held: they can be put back (steered) while the window runs. Each client they send a request
      // on for is asked to reconnect (one hop each); a handler's that cannot be sent on only once
      // the whole new generation serves (handOffHeld).
      const hold = true;
      for (const slot of slots) {
        if (!slot.current || slot.current.spec.generation >= this.generation) continue;
        if (isNewReady(slot.replacement)) this.pool.promote(slot.id, hold);
        else this.pool.standDown(slot.id, hold);
      }
      this.pool.steer();
      this.#stage = { kind: "switched", switch: { at: now, superseded: false, handedOff: false } };
    }
    const { switch: switched } = this.#stage as Extract<Stage, { kind: "switched" }>;
    let joined = false;
    for (const slot of slots) {
      if (!isNewReady(slot.replacement)) continue;
      this.pool.promote(slot.id);
      joined = true;
    }
    if (joined) this.pool.steer();
    // Once every new worker serves, the held ones hand their clients over (once), and drain
    // when the window has passed (or a newer change takes over).
    const complete = this.pool.view().every((slot) => !slot.replacement);
    if (complete && !switched.handedOff && this.pool.holding()) {
      switched.handedOff = true;
      this.pool.handOffHeld();
    }
    if (!switched.superseded && now - switched.at < this.#settleMs()) return false;
    this.#settled = true;
    if (this.pool.holding() && (complete || switched.superseded)) this.pool.releaseHeld();
    // Superseded: the next rollout starts now, and waits for these old workers at its own end.
    return switched.superseded || this.pool.outdated(this.generation) === 0;
  }

  /**
   * One step, starting: how many new workers may start now. Steered
   * (leadFirst), the lead first, alone; the others once it listens, is ready
   * or is gone, or LEAD_START_MS after it started. Otherwise all at once.
   */
  #roomWhileStarting(now: number, stage: Extract<Stage, { kind: "starting" }>): number {
    if (!this.settings.leadFirst) return Infinity;
    const started = this.pool.view().flatMap((slot) =>
      slot.replacement && slot.replacement.spec.generation >= this.generation
        ? [slot.replacement]
        : []
    );
    if (stage.leadAt === undefined) {
      if (started.length > 0) return Infinity; // started before this rollout was told to lead
      stage.leadAt = now;
      return 1;
    }
    const leadIsOn = started.length === 0 ||
      started.some((child) => child.state !== "starting" || child.ports.size > 0);
    return leadIsOn || now >= stage.leadAt + LEAD_START_MS ? Infinity : 0;
  }

  /** Slots running older code with no replacement yet. */
  #notStarted(): number {
    return this.pool.view().filter((slot) =>
      slot.current !== undefined && slot.current.spec.generation < this.generation &&
      !slot.replacement
    ).length;
  }

  /**
   * Starts up to `room` replacements for slots still running older code.
   * An older replacement still starting is let go first: a recycle's (or
   * one a superseded rollout left in an empty slot) reads whatever code is
   * on disk as it starts, so it could serve this reload's new code ahead of
   * the switch, beside old workers that still serve (measured: old code for
   * up to 221 ms after new code first answered, a recycle begun between a
   * save and its SIGHUP). This rollout starts that slot's worker instead.
   */
  #startReplacements(now: number, room: number): void {
    for (const slot of this.pool.view()) {
      if (slot.replacement && slot.replacement.spec.generation < this.generation) {
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
    this.#followUp = coalesce(this.#followUp, request);
  }

  /** The single rollout to run after this one, if anything arrived meanwhile. */
  get followUp(): ReloadRequest | undefined {
    return this.#followUp;
  }

  /** Tells everyone waiting how it ended. */
  settle(reply: ControlReply): void {
    for (const waiter of this.#waiters.splice(0)) waiter(reply);
  }

  /** What happened, in one line (report.ts words it). */
  summary(workers: number, ready: number, processes: number, now: number): string {
    const ms = Math.round(now - this.startedAt);
    const { generation, request, replacing, superseded } = this;
    return reloadSummary(
      { generation, request, replacing, superseded, ms },
      workers,
      ready,
      processes,
    );
  }
}

/** What a reload's owner drives and reads (the supervisor wires it). */
export interface ReloadsSeam {
  options: Pick<RunConfig, "oneStepSwitch" | "reloadBatch" | "settle"> & {
    /** Checks the `--env-file` files before a reload; returns what is wrong, if anything. */
    checkEnv?: () => string | undefined;
    /** Watching: a failed generation waits for a change. */
    watching: boolean;
  };
  clock: Clock;
  isoTime(): string;
  workers: WorkerPool;
  processes: ProcessSet;
  connection(): Connection | undefined;
  report: Report;
  /** True once the instance stops: a reload is refused. */
  stopping(): boolean;
  /** Runs a coalesced follow-up as an event of the loop. */
  followUp(request: ReloadRequest): void;
}

/**
 * A reload from request to end: coalescing (whatever arrives during a
 * rollout becomes one follow-up), the env check, the generation, the spares,
 * then the Rollout's stages, then its end (the summary, the waiters, the
 * metrics, `status`'s last reload, the follow-up). The supervisor only
 * dispatches to it.
 */
export class Reloads {
  /** The newest generation: what a slot that starts now runs. */
  generation = 1;
  #rollout?: Rollout;
  /** The last reload's outcome, for `status`. */
  lastReload?: StatusReport["supervisor"]["lastReload"];
  /** The newest generation whose failure to start has been said. */
  #waitingSaid = 0;

  constructor(private readonly seam: ReloadsSeam) {}

  /** True while a rollout runs. */
  get reloading(): boolean {
    return this.#rollout !== undefined;
  }

  /** True while a rollout runs that replaces workers (not only custom processes). */
  get rollingOutWorkers(): boolean {
    return this.#rollout?.request.workers ?? false;
  }

  /** True unless a rollout runs whose new workers do not all serve yet. */
  get workersSettled(): boolean {
    return this.#rollout?.everyNewServes ?? true;
  }

  /** Asks for a reload: refused while stopping, coalesced during a rollout, else started. */
  request(request: ReloadRequest): void {
    const { seam } = this;
    if (seam.stopping()) {
      request.reply?.({ ok: false, error: "the instance is stopping", kind: "failure" });
      return;
    }
    if (this.#rollout) {
      // Coalesce: whatever arrives during a rollout becomes exactly one follow-up.
      this.#rollout.queueFollowUp(request);
      this.#rollout.supersede();
      return seam.report.reloadQueued(request);
    }
    // A broken env file is broken code: refused before anything starts.
    const envError = seam.options.checkEnv?.();
    if (envError) {
      const error = `reload aborted: ${envError}`;
      seam.report.reloadRefused(error, request);
      request.reply?.({ ok: false, error, kind: "failure" });
      return;
    }
    const { workers, processes, options } = seam;
    const generation = ++this.generation;
    // The reload's files may change what imports what: the graphs wait for their refresh.
    if (request.files.length > 0) seam.connection()?.graphs?.invalidate();
    // Steered, a held predecessor can serve again, and the lead gets the CPU to itself.
    const steered = seam.connection()?.handover.mode === "ebpf";
    this.#rollout = new Rollout(
      generation,
      request,
      seam.clock.now(),
      workers,
      {
        queueReloads: (names) =>
          processes.queueRestart((config) =>
            config.reload && (names === undefined || names.includes(config.name))
          ),
        restarting: () => processes.restarting(),
      },
      {
        oneStep: options.oneStepSwitch,
        reloadBatch: options.reloadBatch,
        settleMs: options.settle,
        canPutBack: steered,
        leadFirst: steered,
      },
      workers.anyServing(),
    );
    if (staleForSpares(request)) workers.discardSpares();
    // New code is tried at once: backoff slows down the same code crashing again, never new code.
    if (request.workers) workers.retryNow(generation);
    if (request.processes) processes.retryNow(generation);
    seam.report.reloadStarted(request, generation);
  }

  /** A worker of a reload became ready: systemd hears how far it is. */
  onWorkerReady(): void {
    if (this.#rollout?.request.workers) this.seam.report.reloadProgress(this.#rollout.generation);
  }

  /** New code failing during its reload is the rollout's to judge: true when it aborted. */
  onWorkerExit(child: Child, outcome: WorkerExit): boolean {
    return this.#rollout?.onWorkerExit(child, outcome) ?? false;
  }

  /** One step of the rollout under way; reports its end. */
  advance(now: number): void {
    const rollout = this.#rollout;
    if (!rollout) return;
    const step = rollout.advance(now);
    if (step.state === "done") this.#finish(rollout);
    if (step.state === "aborted") this.#abort(rollout, step);
  }

  /** When the rollout next needs the loop, or Infinity. */
  nextDeadline(now: number): number {
    return this.#rollout?.nextDeadline(now) ?? Infinity;
  }

  /** Stopping: whoever waits hears it; replacements not yet in service go. */
  cancel(): void {
    this.#rollout?.cancel({ ok: false, error: "the instance is stopping", kind: "failure" });
    this.#rollout = undefined;
  }

  /** Says once per generation that nothing serves and what a fix must address. */
  waitForChange(generation: number, summary: string): void {
    if (this.#waitingSaid >= generation || this.seam.workers.anyServing()) return;
    this.#waitingSaid = generation;
    log.warn(
      "supervisor.waiting",
      `waiting for a change (generation ${generation} failed: ${summary})`,
      { role: "supervisor", generation },
    );
  }

  #finish(rollout: Rollout): void {
    const { workers, processes, seam } = { ...this.seam, seam: this.seam };
    this.#rollout = undefined;
    const ready = rollout.request.workers ? workers.readyOf(rollout.generation) : workers.desired;
    // A change may have restarted only some processes (module_graph.ts): count those.
    const restarted = processes.count(rollout.request.processNames);
    const summary = rollout.summary(workers.desired, ready, restarted, seam.clock.now());
    seam.report.reloadDone(rollout, summary);
    this.#end(rollout, { ok: true, message: summary, generation: rollout.generation });
  }

  #abort(
    rollout: Rollout,
    { why, summary, switched, putBack }: Extract<RolloutState, { state: "aborted" }>,
  ): void {
    const { seam } = this;
    this.#rollout = undefined;
    const then = afterAbort({
      putBack,
      switched,
      serving: seam.workers.anyServing(),
      watching: seam.options.watching,
      generation: rollout.generation,
      summary,
    });
    this.#waitingSaid = rollout.generation;
    seam.report.reloadAborted(rollout.generation, `reload aborted: ${why}\n${then}`);
    this.#end(rollout, { ok: false, error: `reload aborted: ${why}`, kind: "failure" });
  }

  /** Counts a rollout's end, tells who waits, keeps its outcome for `status`, runs its follow-up. */
  #end(rollout: Rollout, reply: ControlReply): void {
    const { seam } = this;
    seam.report.reloadEnded(rollout, reply.ok);
    rollout.settle(reply);
    this.lastReload = {
      generation: rollout.generation,
      ok: reply.ok,
      // A failure's first line: the rest (its output) is in the log.
      message: reply.ok ? reply.message! : reply.error.split("\n")[0],
      at: seam.isoTime(),
    };
    if (rollout.followUp) seam.followUp(rollout.followUp);
    // Off the critical path (once edits pause): the new code may import other files now.
    else seam.connection()?.graphs?.refreshSoon();
  }
}
