/**
 * The worker pool: one slot per worker id. A slot holds its `current` worker
 * and, during a reload or a recycle, a `replacement`, which takes over only
 * once it is ready; the predecessor then drains among the `retiring` workers,
 * or is `held` (out of the steered set, still listening) while a new
 * generation settles, so that it can be put back. The pool is mechanism: when
 * a reload's replacements start and take over is the Rollout's to decide.
 */
import { type Child, describeExit } from "../child/child.ts";
import { LAST_CLOSE_WINDOW_MS } from "../runtime/protocol.ts";
import type { StatusRow } from "../control/protocol.ts";
import { log } from "../log/mod.ts";
import { type WorkerLaunch, workerSpec } from "./child_command.ts";
import { SPARE_DELAY_MS, Spares } from "./spares.ts";
import { retiredExit, SameError } from "./worker_exits.ts";
import { formatMs, formatTail, lastWords, whenExited } from "./describe.ts";
import { hintLine, summarizeError } from "./failures.ts";
import {
  markErrored,
  reportFailure,
  type Slot,
  SlotGroup,
  type SlotPolicy,
  type SlotSeam,
  type Usage,
  workerRows,
} from "./slots.ts";

interface WorkerSlot extends Slot {
  id: number;
  replacement?: Child;
  /** Unplanned exits so far (crashes, timeouts). */
  restarts: number;
  /** The newest generation this slot has started. */
  triedGeneration: number;
  /** Why the current worker should be replaced (max-requests, max-memory), if it should. */
  recycle?: string;
  /** True when that reason was logged already (an unresponsive worker's). */
  recycleSaid?: boolean;
  /** Failed ERRORED_AFTER times in a row after the service was up: still retried, shown as errored. */
  errored: boolean;
}

/** What a worker's exit meant to the pool. */
export type WorkerExit =
  | { kind: "drained" }
  /** `summary`: the error in a few words; `failures`: in a row, in this slot. */
  | { kind: "crashed"; why: string; summary: string; failures: number; wasReady: boolean }
  | { kind: "replacement-failed"; why: string; summary: string }
  | { kind: "unknown" };

export type WorkerPoolOptions =
  & WorkerLaunch
  & SlotSeam
  & {
    /**
     * Told which workers serve whenever that may have changed, and before any
     * worker drains: with eBPF steering, only they get new connections.
     */
    steer?: (serving: readonly Child[]) => void;
    /**
     * Told which workers are about to drain (or, `held`, to be held), before
     * any of them is told: their listeners are stopped from outside
     * (handover/release.ts), so no client that one of them asks to reconnect
     * lands on another's listener as it closes. A held worker that can be
     * put back (steered) keeps its listener.
     */
    release?: (leaving: readonly Child[], held?: boolean) => void;
    /** False while a failed worker is not restarted (a takeover ends instead): its log says so. */
    restarts?: () => boolean;
    /** True while a reload's rollout replaces workers: it promotes the replacements of its generation. */
    rollingOutWorkers: () => boolean;
  };

/** A worker slot as the Rollout sees it. */
export type SlotView = Readonly<Pick<WorkerSlot, "id" | "current" | "replacement" | "retryAt">>;

export class WorkerPool extends SlotGroup<WorkerSlot, WorkerPoolOptions> {
  readonly #retiring = new Set<Child>();
  /** Predecessors taken out of service but still listening, by slot id: they can be put back. */
  readonly #held = new Map<number, Child>();
  readonly #spares: Spares;
  /** Held predecessors already told to send their requests on. */
  readonly #toldHeld = new WeakSet<Child>();
  /** The last error shown in full, by any slot, and how many workers it hit since. */
  readonly #sameError = new SameError();
  /** Generations a new worker of which failed before it was ready (their others are stopped). */
  readonly #failedGenerations = new Set<number>();
  /** Why we killed a child, to explain its exit. */
  readonly #killReasons = new WeakMap<Child, string>();
  /** Workers ended by --ready-timeout: their kill reason says when. */
  readonly #notReadyInTime = new WeakSet<Child>();
  desired: number;
  /** True once any worker has been ready: from then on failures are retried, not fatal. */
  everReady = false;

  /** A worker not ready within --ready-timeout is killed; --grace for each drain. */
  protected readonly policy: SlotPolicy = {
    role: "worker",
    startMs: this.options.readyTimeout,
    onStartDeadline: (child) => {
      this.#killReasons.set(child, `was not ready within ${this.options.readyTimeout} ms`);
      this.#notReadyInTime.add(child);
      child.kill();
    },
    graceMs: () => this.options.grace,
    windowMs: (child) =>
      child.drainedLast
        ? Math.min(this.options.closeWindow, LAST_CLOSE_WINDOW_MS)
        : this.options.closeWindow,
    timeoutMs: this.options.timeout,
    onUnresponsive: (child) => {
      const why = `unresponsive for ${formatMs(this.options.timeout)} (event loop blocked)`;
      log.warn(
        "worker.unresponsive",
        `worker ${child.spec.id} (pid ${child.pid}) ${why}; replacing it`,
        { role: "worker", id: child.spec.id, pid: child.pid },
      );
      this.#killReasons.set(child, why);
      this.markForRecycle(child, why, true);
    },
  };

  constructor(options: WorkerPoolOptions) {
    super(options);
    this.desired = options.workers;
    this.#spares = new Spares(options);
  }

  /** Scales to `workers`; with --spares auto the warm spares follow (surplus ones end now). */
  scaleTo(workers: number): void {
    this.desired = workers;
    if (!this.options.sparesFollow) return;
    this.#spares.resize(workers);
  }

  /** Every live worker: current, replacements, held and retiring. */
  children(): Child[] {
    const children = [...this.#retiring, ...this.#held.values(), ...this.#spares.stopping()];
    for (const slot of this.slots) {
      if (slot.current) children.push(slot.current);
      if (slot.replacement) children.push(slot.replacement);
    }
    return children;
  }

  /** True when every wanted slot has a ready worker. */
  allReady(): boolean {
    return this.slots.length === this.desired &&
      this.slots.every((slot) => slot.current?.state === "ready");
  }

  /**
   * Workers a rollout to `generation` still waits for: slots running an older
   * worker, starting a replacement or a new worker, or not yet started with
   * this generation, and older workers still draining. A reload is only done
   * once no old worker can take a connection and every slot has tried the new
   * code (a slot whose new worker failed waits out its backoff meanwhile).
   */
  outdated(generation: number): number {
    const slots = this.slots.filter((slot) =>
      slot.replacement !== undefined ||
      (slot.current
        ? slot.current.spec.generation < generation || slot.current.state === "starting"
        : slot.triedGeneration < generation)
    ).length;
    // A draining worker that closed its listeners takes no new connection: the
    // reload does not wait for its long responses (streams) to end.
    const draining = [...this.#retiring].filter((child) =>
      child.spec.generation < generation && child.accepting
    );
    return slots + draining.length;
  }

  /** Ready workers of `generation` or newer. */
  readyOf(generation: number): number {
    return this.slots.filter((slot) =>
      slot.current?.state === "ready" && slot.current.spec.generation >= generation
    ).length;
  }

  // ---- Reconciling -------------------------------------------------------------------

  /** Drains slots beyond the wanted count, and starts workers in empty slots. */
  fill(now: number, generation: number): void {
    while (this.slots.length > this.desired) {
      const slot = this.slots.pop()!;
      for (const child of [slot.current, slot.replacement]) if (child) this.#retire(child);
    }
    for (let id = 0; id < this.desired; id++) {
      this.slots[id] ??= {
        ...this.newSlot(),
        id,
        restarts: 0,
        triedGeneration: 0,
        errored: false,
      };
      const slot = this.slots[id];
      if (!slot.current && !slot.replacement && now >= slot.retryAt) {
        slot.current = this.#spawn(slot, generation);
      }
    }
  }

  /**
   * Starts the spares that are missing, once no worker is starting (a start
   * takes fresh processes; the spares wait for the next need) and the last
   * one to become ready has answered its first requests (SPARE_DELAY_MS).
   * Called after the reload has advanced: a worker that just became ready is
   * steered to before a spare's start takes the supervisor's time.
   */
  topUpSpares(now: number): void {
    const starting = this.slots.some((slot) =>
      slot.current?.state === "starting" || slot.replacement?.state === "starting"
    );
    const lastReady = Math.max(0, ...this.children().map((child) => child.readyAt ?? 0));
    const notBefore = this.everReady ? lastReady + SPARE_DELAY_MS : 0;
    this.#spares.topUp(now, starting && this.everReady, notBefore);
  }

  /** The slots, for the Rollout to choose which to replace. */
  view(): readonly SlotView[] {
    return this.slots;
  }

  /** Starts a replacement of `generation` for slot `id`; it takes over only when promoted. */
  startReplacement(id: number, generation: number): void {
    const slot = this.slots[id];
    if (!slot?.current || slot.replacement) return;
    slot.replacement = this.#spawn(slot, generation);
    this.options.counters?.workerRestarts.inc({ cause: "reload" });
  }

  /**
   * A ready replacement takes over its slot. Its predecessor drains, or with
   * `hold`, leaves the steered set but keeps listening until {@link releaseHeld}
   * or {@link putBack}. Call it for several slots, then {@link steer} once.
   */
  promote(id: number, hold = false): void {
    const slot = this.slots[id];
    if (slot?.replacement?.state !== "ready") return;
    const predecessor = slot.current;
    slot.current = slot.replacement;
    slot.replacement = undefined;
    slot.recycle = undefined;
    if (predecessor) this.#leave(id, predecessor, hold);
  }

  /**
   * Slot `id`'s current worker leaves service before its replacement is
   * ready (a one-step switch takes over at the first ready new worker): it
   * is held, or drains; the replacement takes the slot when it is promoted.
   */
  standDown(id: number, hold = false): void {
    const slot = this.slots[id];
    const current = slot?.current;
    if (!current) return;
    slot.current = undefined;
    slot.recycle = undefined;
    this.#leave(id, current, hold);
  }

  /** A worker out of service: held (it can be put back), or retiring (it drains at the next steer). */
  #leave(id: number, child: Child, hold: boolean): void {
    if (hold) this.#held.set(id, child);
    else this.#retiring.add(child);
  }

  /**
   * Tells `steer` the serving workers, then tells held predecessors to send
   * their requests on, and drains those retired meanwhile (in that order:
   * nothing is sent on to a worker that is still steered to).
   */
  steer(): void {
    this.#steer();
    const held = [...this.#held.values()].filter((child) => !this.#toldHeld.has(child));
    this.options.release?.(held, true);
    for (const child of held) {
      this.#toldHeld.add(child);
      child.hold(true);
    }
    const leaving = [...this.#retiring].filter((child) =>
      child.killedAt === undefined && (child.state === "ready" || child.state === "starting")
    );
    this.options.release?.(leaving);
    for (const child of leaving) {
      // A hung worker cannot drain (its event loop is blocked): end it.
      if (this.unresponsive.has(child)) child.kill();
      else child.drain();
    }
  }

  /** True while predecessors are held. */
  holding(): boolean {
    return this.#held.size > 0;
  }

  /** The whole generation that replaced the held predecessors serves: they may hand their clients over. */
  handOffHeld(): void {
    for (const child of this.#held.values()) {
      if (this.#toldHeld.has(child)) child.handOff();
    }
  }

  /** The held predecessors drain: the generation that replaced them has settled. */
  releaseHeld(): void {
    for (const child of this.#held.values()) this.#retiring.add(child);
    this.#held.clear();
    this.steer();
  }

  /**
   * The held predecessors serve again, in their slots; the workers that had
   * replaced them, and replacements not yet promoted, drain.
   */
  putBack(): void {
    for (const [id, predecessor] of this.#held) {
      const slot = this.slots[id];
      if (!slot || predecessor.state !== "ready") {
        this.#retiring.add(predecessor);
        continue;
      }
      if (slot.current) this.#retiring.add(slot.current);
      slot.current = predecessor;
      predecessor.hold(false);
      this.#toldHeld.delete(predecessor);
    }
    this.#held.clear();
    this.cancelReplacements();
    // The put-back workers are steered to again before those that replaced them drain.
    this.steer();
  }

  /** Slot `id`'s replacement, not yet promoted, is let go (the slot then starts the newest code). */
  cancelReplacement(id: number): void {
    const slot = this.slots[id];
    if (!slot?.replacement) return;
    this.#retiring.add(slot.replacement);
    slot.replacement = undefined;
    this.steer();
  }

  /** Replacements not yet promoted are let go (a reload aborted, or stopping). */
  cancelReplacements(): void {
    for (const slot of this.slots) this.cancelReplacement(slot.id);
  }

  /**
   * Replaces workers marked for recycling (max-requests, max-memory) through
   * the rolling mechanism: the replacement is ready before the old one drains.
   */
  replaceRecycled(now: number, generation: number): void {
    for (const slot of this.slots) {
      if (!slot.recycle || !slot.current || slot.replacement || now < slot.retryAt) continue;
      if (slot.recycleSaid) {
        slot.replacement = this.#spawn(slot, generation);
        this.options.counters?.workerRestarts.inc({ cause: "timeout" });
        continue;
      }
      log.info(
        "worker.recycle",
        `worker ${slot.id} (pid ${slot.current.pid}) ${slot.recycle}: replacing it`,
        { role: "worker", id: slot.id, pid: slot.current.pid, reason: slot.recycle },
      );
      slot.replacement = this.#spawn(slot, generation);
      this.options.counters?.workerRestarts.inc({ cause: "recycle" });
    }
  }

  /** Says why a worker will exit, for its exit's log line (a swallowed bind error exits 0). */
  explainExit(child: Child, why: string): void {
    if (!this.#killReasons.has(child)) this.#killReasons.set(child, why);
  }

  /** Marks a worker for replacement; the reason ends up in the log (unless `quiet`: said already). */
  markForRecycle(child: Child, reason: string, quiet = false): void {
    const slot = this.#slotOf(child);
    if (slot?.current === child && child.state === "ready" && !slot.recycle) {
      slot.recycle = reason;
      slot.recycleSaid = quiet;
    }
  }

  /** The workers that serve now (for sampling). */
  serving(): Child[] {
    return this.slots.flatMap((slot) => slot.current?.state === "ready" ? [slot.current] : []);
  }

  /** Status rows: every live worker, and each empty slot waiting out its backoff. */
  statusRows(usage: Usage): StatusRow[] {
    const now = this.options.clock.now();
    return [
      ...workerRows(this.slots, [...this.#held.values()], [...this.#retiring], usage, now),
      ...this.#spares.statusRows(usage, now),
    ];
  }

  /**
   * Asks every worker to drain (stop); `last`: the instance stops for good,
   * nobody takes their clients over (not a takeover's predecessor).
   */
  drainAll(last = true): void {
    // Spares hold no connection and run no app code: they just go.
    this.#spares.discard(true);
    for (const slot of this.slots.splice(0)) {
      for (const child of [slot.current, slot.replacement]) if (child) this.#retiring.add(child);
    }
    for (const child of this.#held.values()) this.#retiring.add(child);
    this.#held.clear();
    this.#steer();
    const leaving = [...this.#retiring];
    this.options.release?.(leaving);
    for (const child of leaving) child.drain(last);
  }

  /** Kills every worker's process group (immediate stop). */
  killAll(): void {
    this.drainAll();
    for (const child of this.#retiring) child.kill();
  }

  /** New code (of `generation`): slots waiting out a backoff start at once, and its failures count afresh. */
  override retryNow(generation: number): void {
    this.#sameError.forget();
    super.retryNow(generation);
  }

  /** True when some worker is ready to serve. */
  anyServing(): boolean {
    return this.slots.some((slot) => slot.current?.state === "ready");
  }

  /** The nearest time something has to happen (a spare's retry too), or Infinity. */
  override nextDeadline(now: number): number {
    return super.nextDeadline(now, this.#spares.deadlines());
  }

  // ---- Children's news -------------------------------------------------------------------

  /**
   * A worker reported ready. A recycle's replacement takes over at once: it
   * runs its predecessor's code, or newer code with no rollout to promote it
   * (after a reload was aborted and its predecessors put back, a new process
   * can only run the code on disk, as a crashed slot's restart does). A
   * replacement of the generation a rollout brings waits for it.
   */
  onReady(child: Child): void {
    if (child.state !== "starting") return;
    const tookMs = child.markReady();
    this.everReady = true;
    log.info(
      "worker.ready",
      `worker ${child.spec.id} ready (pid ${child.pid}, ${Math.round(tookMs)} ms)`,
      { role: "worker", id: child.spec.id, pid: child.pid, generation: child.spec.generation },
    );
    const slot = this.#slotOf(child);
    if (slot?.replacement !== child) return this.#steer();
    const current = slot.current;
    if (!current) return;
    const newer = child.spec.generation > current.spec.generation;
    if (newer && this.options.rollingOutWorkers()) return;
    if (newer) {
      log.info(
        "worker.newer-code",
        `worker ${slot.id} (pid ${child.pid}) runs generation ${child.spec.generation}, newer ` +
          `than the generation ${current.spec.generation} worker it replaces: a new process ` +
          `starts the code on disk, and no reload is rolling it out`,
        { role: "worker", id: slot.id, pid: child.pid, generation: child.spec.generation },
      );
    }
    this.promote(slot.id);
    this.steer();
  }

  /**
   * A worker exited: account for it, and schedule its restart when it was
   * not asked to go. `generation` is the newest: a slot whose old worker
   * crashed restarts with new code at once (backoff slows down only the same
   * code crashing again).
   */
  onExit(child: Child, status: Deno.CommandStatus, generation: number): WorkerExit {
    const fields = { role: "worker" as const, id: child.spec.id, pid: child.pid };
    if (this.#spares.onExit(child, status)) return { kind: "drained" };
    for (const [id, held] of this.#held) {
      if (held !== child) continue;
      this.#held.delete(id);
      child.releaseOutput(true);
      log.info("worker.exited", `worker ${id} (pid ${child.pid}) exited while held`, fields);
      return { kind: "drained" };
    }
    if (this.#retiring.delete(child)) {
      // Told to stop before it was ever ready: its start-up output is not news (a crash's is).
      child.releaseOutput(child.readyAt !== undefined);
      const how = retiredExit(
        child,
        this.#killReasons.get(child),
        this.#failedGenerations.has(child.spec.generation),
      );
      log.info("worker.exited", `worker ${child.spec.id} (pid ${child.pid}) ${how}`, {
        ...fields,
        status: describeExit(status),
      });
      return { kind: "drained" };
    }
    const slot = this.#slotOf(child);
    if (!slot) return { kind: "unknown" };
    const why = this.#killReasons.get(child) ?? `exited with ${describeExit(status)}`;
    const delay = child.spec.generation < generation ? 0 : slot.backoff.failed(child.uptimeMs());
    slot.retryAt = this.options.clock.now() + delay;
    const words = lastWords(child.tail.lines());
    const summary = summarizeError(words, this.options.cwd);
    if (slot.replacement === child) {
      this.#failedGenerations.add(child.spec.generation);
      // The abort message carries the error (the `reload` caller sees it too).
      child.releaseOutput(false);
      slot.replacement = undefined;
      // "was not ready within 1500 ms" says when already.
      const when = this.#notReadyInTime.has(child)
        ? ""
        : ` ${whenExited(child, this.options.settle)}`;
      return {
        kind: "replacement-failed",
        why: `worker ${child.spec.id} of generation ${child.spec.generation} ${why}` +
          `${when}${formatTail(child)}${hintLine(words)}`,
        summary,
      };
    }
    const wasReady = child.readyAt !== undefined;
    slot.current = undefined;
    this.#steer();
    slot.recycle = undefined;
    slot.restarts++;
    this.options.counters?.workerRestarts.inc({ cause: "crash" });
    reportFailure(child, slot.failures, {
      why,
      delay,
      restarted: this.options.restarts?.() ?? true,
      backoff: slot.backoff,
      // Every slot fails the same way when the code is broken: show it once, for the first,
      // and count the workers it hits.
      sameAsOtherSlot: (signature) => this.#sameError.hit(signature),
    });
    markErrored(slot, child, summary, this.everReady);
    return { kind: "crashed", why, summary, failures: slot.backoff.failures, wasReady };
  }

  // ---- Helpers ------------------------------------------------------------------------

  /**
   * Starts the worker a slot wants: a warm spare when one waits (it reads the
   * app's code only now, so it runs the newest), else a fresh process.
   */
  #spawn(slot: WorkerSlot, generation: number): Child | undefined {
    slot.triedGeneration = Math.max(slot.triedGeneration, generation);
    const ports = [...new Set(this.serving().flatMap((child) => [...child.ports]))];
    const launch = {
      ...this.options,
      workers: this.desired,
      ports: ports.length ? ports : undefined,
    };
    const spec = workerSpec(launch, slot.id, generation);
    return this.#spares.release(spec) ?? this.start(slot, spec);
  }

  /** Ends the waiting spares, new ones to follow (they read config files at their start). */
  discardSpares(): void {
    this.#spares.discard();
  }

  #retire(child: Child): void {
    this.#retiring.add(child);
    this.steer();
  }

  /** Tells `steer` the serving workers (it tells the handover only what changed: ports.ts). */
  #steer(): void {
    this.options.steer?.(this.serving());
  }

  #slotOf(child: Child): WorkerSlot | undefined {
    const slot = this.slots[child.spec.id as number];
    return slot && (slot.current === child || slot.replacement === child) ? slot : undefined;
  }
}
