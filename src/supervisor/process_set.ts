/**
 * Custom processes (queue consumers, schedulers, ...): one slot per instance.
 * A slot restarts its process by policy, with the workers' backoff; warm
 * restarts (reload, `restart`, SIGTERM to the process) go one instance at a
 * time: stop the old one (its `onShutdown` runs), start the new one, wait until
 * it has started, then the next.
 */
import { type Child, describeExit } from "../child/child.ts";
import { log } from "../log/mod.ts";
import { processSpec, type WorkerLaunch } from "./child_command.ts";
import type { ProcessConfig } from "../config/mod.ts";
import { lastWords } from "./describe.ts";
import { hintLine } from "./failures.ts";
import {
  childRow,
  emptyRow,
  reportFailure,
  type Slot,
  SlotGroup,
  type SlotPolicy,
  type SlotSeam,
  type Usage,
} from "./slots.ts";
import type { StatusRow } from "../control/protocol.ts";

/** A process that neither says `ready()` nor finishes loading counts as started after this long. */
const STARTED_AFTER_MS = 1000;

interface ProcessSlot extends Slot {
  config: ProcessConfig;
  index: number;
  label: string;
  /** Stays down by its restart policy until a restart or reload asks for it again. */
  down: boolean;
  /** Being restarted on purpose: start again at once when the old one exits. */
  restarting: boolean;
  /** Starts after the first one (crash restarts and warm restarts). */
  starts: number;
}

export type ProcessSetOptions = WorkerLaunch & SlotSeam;

export class ProcessSet extends SlotGroup<ProcessSlot, ProcessSetOptions> {
  /** Children we asked to stop (stop, or the first half of a restart). */
  readonly #stopping = new Set<Child>();
  /** Children that asked, through SIGTERM, to be started again. */
  readonly #warmRestarts = new WeakSet<Child>();
  readonly #restartQueue: ProcessSlot[] = [];
  #restartingNow?: ProcessSlot;
  /** Processes killed for a blocked event loop: started again at once. */

  /** A process that neither says ready nor fails within a second counts as started. */
  protected readonly policy: SlotPolicy = {
    role: "process",
    startMs: STARTED_AFTER_MS,
    onStartDeadline: (child) => this.onReady(child),
    graceMs: (child) => this.#graceOf(child),
    timeoutMs: this.options.timeout,
    onUnresponsive: (child) => {
      log.warn(
        "process.unresponsive",
        `${child.spec.label} (pid ${child.pid}) unresponsive for ${this.options.timeout} ms ` +
          `(event loop blocked); restarting it`,
        { role: "process", id: child.spec.id, pid: child.pid },
      );
      child.kill();
    },
  };

  constructor(options: ProcessSetOptions) {
    super(options);
    this.slots.push(
      ...options.processes.flatMap((config) =>
        Array.from({ length: config.count }, (_, index) => ({
          ...this.newSlot(),
          config,
          index,
          label: `${config.name}#${index}`,
          down: false,
          restarting: false,
          starts: 0,
        }))
      ),
    );
  }

  /** Every live custom process. */
  children(): Child[] {
    const children = [...this.#stopping];
    for (const slot of this.slots) if (slot.current) children.push(slot.current);
    return [...new Set(children)];
  }

  /** Live instances of the processes named (all of them: undefined). */
  count(names?: string[]): number {
    return this.children().filter((child) =>
      names === undefined || names.some((name) => String(child.spec.id).startsWith(`${name}#`))
    ).length;
  }

  /** The configured process names. */
  names(): string[] {
    return [...new Set(this.slots.map((slot) => slot.config.name))];
  }

  /** True while warm restarts are queued or under way. */
  restarting(): boolean {
    return this.#restartQueue.length > 0 || this.#inProgress(this.#restartingNow);
  }

  /** A restart is in progress until the old instance is gone and the new one has started. */
  #inProgress(slot: ProcessSlot | undefined): boolean {
    return slot !== undefined && (slot.restarting || slot.current?.state === "starting");
  }

  // ---- Reconciling -------------------------------------------------------------------

  /** Starts every instance that should run and may (backoff expired, not down by policy). */
  fill(now: number, generation: number): void {
    for (const slot of this.slots) {
      if (slot.current || slot.down || now < slot.retryAt) continue;
      slot.current = this.#spawn(slot, generation);
    }
  }

  /** Moves the warm-restart queue on: one instance at a time. */
  advanceRestarts(): void {
    if (this.#inProgress(this.#restartingNow)) return;
    this.#restartingNow = undefined;
    const next = this.#restartQueue.shift();
    if (!next) return;
    this.#restartingNow = next;
    next.down = false;
    next.retryAt = 0;
    if (next.current && next.current.state !== "draining") {
      next.restarting = true;
      this.#stop(next.current);
    }
  }

  /**
   * Queues a warm restart of every instance of the processes `which` selects
   * (one already queued stays queued once); returns how many were selected.
   */
  queueRestart(which: (config: ProcessConfig) => boolean): number {
    let selected = 0;
    for (const slot of this.slots) {
      if (!which(slot.config)) continue;
      selected++;
      if (!this.#restartQueue.includes(slot)) this.#restartQueue.push(slot);
    }
    return selected;
  }

  /** Asks every custom process to stop gracefully. */
  drainAll(): void {
    this.#restartQueue.length = 0;
    this.#restartingNow = undefined;
    for (const slot of this.slots) {
      slot.down = true;
      if (slot.current) this.#stop(slot.current);
    }
  }

  /** Kills every custom process's group. */
  killAll(): void {
    this.drainAll();
    for (const child of this.children()) child.kill();
  }

  /** Delivers a message to every instance of `name`; returns how many got it. */
  send(name: string, data: unknown): number {
    let sent = 0;
    for (const slot of this.slots) {
      if (slot.config.name !== name || !slot.current || slot.current.state === "draining") continue;
      slot.current.send({ t: "message", data });
      sent++;
    }
    return sent;
  }

  /** Status rows: one per instance, running or not. */
  statusRows(usage: Usage): StatusRow[] {
    const now = this.options.clock.now();
    return this.slots.map((slot) => {
      const restarts = Math.max(0, slot.starts - 1);
      if (slot.current) return childRow("process", slot.label, slot.current, restarts, usage, now);
      return emptyRow("process", slot.label, slot.down ? "stopped" : "backoff", restarts);
    });
  }

  // ---- Children's news -------------------------------------------------------------------

  onReady(child: Child): void {
    if (child.state !== "starting") return;
    const tookMs = child.markReady();
    log.info(
      "process.started",
      `${child.spec.label} started (pid ${child.pid}, ${Math.round(tookMs)} ms)`,
      { role: "process", id: child.spec.id, pid: child.pid, generation: child.spec.generation },
    );
  }

  /** The process was sent SIGTERM by someone else: start it again at once when it exits. */
  onRestartRequested(child: Child): void {
    this.#warmRestarts.add(child);
  }

  onExit(child: Child, status: Deno.CommandStatus): void {
    const slot = this.#slotOf(child);
    const wasStopped = this.#stopping.delete(child);
    if (!slot || slot.current !== child) return child.releaseOutput(true);
    slot.current = undefined;
    const fields = { role: "process" as const, id: child.spec.id, pid: child.pid };
    const exit = describeExit(status);
    const crashed = !wasStopped && !this.#warmRestarts.has(child) && !this.unresponsive.has(child);
    // A crash's output is shown once per distinct error (reportFailure); the rest as it came.
    if (!crashed) child.releaseOutput(true);
    if (wasStopped && slot.restarting) {
      slot.restarting = false;
      slot.retryAt = 0;
      log.info(
        "process.restarting",
        `${slot.label} (pid ${child.pid}) stopped; starting it again`,
        fields,
      );
      return;
    }
    if (wasStopped) {
      log.info("process.stopped", `${slot.label} (pid ${child.pid}) stopped`, {
        ...fields,
        status: exit,
      });
      return;
    }
    if (this.unresponsive.has(child)) {
      slot.retryAt = 0;
      return;
    }
    if (this.#warmRestarts.has(child)) {
      slot.retryAt = 0;
      log.info(
        "process.warm-restart",
        `${slot.label} (pid ${child.pid}) asked for a restart (SIGTERM)`,
        fields,
      );
      return;
    }
    const policy = slot.config.restart;
    const clean = status.success;
    if (policy === "never" || (policy === "on-failure" && clean)) {
      const words = lastWords(child.tail.lines());
      child.releaseOutput(true);
      slot.down = true;
      log.warn(
        "process.down",
        `${slot.label} (pid ${child.pid}) exited with ${exit}; not restarted (restart: ${policy})${
          hintLine(words)
        }`,
        { ...fields, status: exit },
      );
      return;
    }
    const delay = slot.backoff.failed(child.uptimeMs());
    slot.retryAt = this.options.clock.now() + delay;
    reportFailure(child, slot.failures, {
      why: `exited with ${exit}`,
      delay,
      backoff: slot.backoff,
    });
  }

  // ---- Helpers ------------------------------------------------------------------------

  #stop(child: Child): void {
    this.#stopping.add(child);
    child.drain();
  }

  #spawn(slot: ProcessSlot, generation: number): Child | undefined {
    slot.starts++;
    if (slot.starts > 1) this.options.counters?.processRestarts.inc({ process: slot.config.name });
    const spec = processSpec(this.options, slot.config, slot.index, generation);
    return this.start(slot, spec);
  }

  #slotOf(child: Child): ProcessSlot | undefined {
    return this.slots.find((slot) => slot.label === child.spec.id);
  }

  /** How long a stopping instance may take (every child comes from a slot). */
  #graceOf(child: Child): number {
    return this.#slotOf(child)!.config.grace;
  }
}
