/**
 * Succession: one supervisor follows another and the port is never dark.
 *
 * - Adoption: the workers a supervisor that died left serving (orphans,
 *   serving on through their --orphan-grace) drain once ours are ready. They
 *   are not our children: each is signalled only after its pid is checked to
 *   still be the process recorded (world.ts).
 * - Takeover (run --takeover) walks three stages in the loop: `starting`
 *   (until every worker is ready), `settling` (for --settle), `stopping` (the
 *   old instance is asked to stop; its exit comes back as an event, and the
 *   name is claimed). Until `stopping`, our workers are not steered and the
 *   old instance serves; a worker that fails ends the takeover, and the old
 *   instance never knew.
 * - Upgrade (`hotreload upgrade`): the running supervisor starts its
 *   successor, `run --takeover` (takeover.ts); whoever asked hears the
 *   outcome when the successor asks us to stop, or exits first.
 * - The record of live workers, for a successor if this supervisor dies.
 */
import { type Child, describeExit } from "../child/child.ts";
import type { ControlReply, StatusReport } from "../control/protocol.ts";
import { log } from "../log/mod.ts";
import type { Ports, Steering } from "./ports.ts";
import type { Report } from "./report.ts";
import type { PredecessorEnd } from "./takeover.ts";
import type { WorkerExit, WorkerPool } from "./worker_pool.ts";
import type { Connection, World } from "./world.ts";

/** What succession hears back through the loop. */
export type SuccessionEvent =
  | { kind: "predecessor-gone"; end: PredecessorEnd }
  | { kind: "successor-exited"; pid: number; status: Deno.CommandStatus };

/** What succession reads and drives (the supervisor wires it). */
export interface SuccessionSeam {
  options: { name: string; settle: number };
  world: Pick<World, "clock" | "isoTime" | "orphans" | "recordWorkers" | "spawnSuccessor">;
  workers: WorkerPool;
  steering: Steering;
  ports: Ports;
  report: Report;
  connection(): Connection | undefined;
  /** Clock time this supervisor started. */
  startedAt: number;
  /** The supervisor's phase: an upgrade needs it running; nothing is claimed while stopping. */
  phase(): "starting" | "running" | "stopping" | "stopped";
  push(event: SuccessionEvent): void;
  /** Ends the run: exit `code`, draining (or killing, `fast`). */
  stop(code: number): void;
}

type Supervisor = StatusReport["supervisor"];

export class Succession {
  /** A takeover under way, by stage; `until`: when `settling` ends. */
  #takeover?: { stage: "starting" | "settling" | "stopping"; until: number };
  /** The successor this supervisor started (hotreload upgrade), and who waits for its outcome. */
  #upgrade?: { pid: number; reply: (reply: ControlReply) => void };
  /** The supervisor this one succeeded, when it adopted its orphaned workers. */
  succeeded?: Supervisor["succeeded"];
  /** The instance this one took over, once it is gone. */
  tookOver?: Supervisor["tookOver"];
  /** The live workers last recorded for a successor (pids). */
  #recorded = "";

  constructor(private readonly seam: SuccessionSeam) {}

  /** Connected: a takeover starts here, silent to systemd, the old steering standing. */
  begin(): void {
    if (!this.seam.connection()?.takeover) return;
    this.#takeover = { stage: "starting", until: Infinity };
    this.seam.report.silent = true;
    // The old instance's steering stands until our workers have settled.
    this.seam.steering.hold();
  }

  /** True while taking over: two queue consumers must not run side by side. */
  get takingOver(): boolean {
    return this.#takeover !== undefined;
  }

  /** False before a takeover's switch: a failed worker ends the takeover instead of restarting. */
  restarts(): boolean {
    return !this.#takeover || this.#takeover.stage === "stopping";
  }

  /** Every worker is ready for the first time: the takeover settles, or the orphans drain. */
  onAllReady(): void {
    if (this.#takeover) return this.#settle();
    this.seam.report.ready(true);
    this.#drainOrphans();
  }

  /**
   * A worker exited. Before a takeover's switch, new code that fails ends the
   * takeover (broken code never replaces working code): true when it did.
   */
  onWorkerExit(child: Child, outcome: WorkerExit): boolean {
    const beforeSwitch = this.#takeover && this.#takeover.stage !== "stopping";
    if (outcome.kind !== "crashed" || !beforeSwitch || this.seam.phase() === "stopping") {
      return false;
    }
    const output = outcome.summary === "no output" ? "" : `: ${outcome.summary}`;
    this.#abortTakeover(`worker ${child.spec.id} ${outcome.why}${output}`);
    return true;
  }

  /**
   * Succession: the workers a supervisor that died left serving (waiting for
   * a successor, --orphan-grace) drain once ours are ready, so the port was
   * never dark.
   */
  #drainOrphans(): void {
    const orphans = this.seam.world.orphans;
    if (!orphans) return;
    const drained = orphans.drain(this.seam.ports.releaseForeign());
    this.succeeded = {
      pid: orphans.supervisor,
      version: orphans.version ?? null,
      workers: drained,
      at: this.seam.world.isoTime(),
    };
    log.info(
      "supervisor.succeeded",
      `succeeded supervisor pid ${orphans.supervisor}, which had died: its ${drained} worker(s) ` +
        `served meanwhile and drain now`,
      { role: "supervisor", pid: orphans.supervisor },
    );
  }

  // ---- Takeover -----------------------------------------------------------------------

  /** Every worker is ready: they must stay up for --settle before the old instance stops. */
  #settle(): void {
    const { predecessor } = this.seam.connection()!.takeover!;
    const { settle } = this.seam.options;
    this.#takeover = { stage: "settling", until: this.seam.world.clock.now() + settle };
    log.info(
      "takeover.settling",
      `taking over pid ${predecessor.pid} once the workers have run for ${settle} ms (--settle)`,
      { role: "supervisor", pid: predecessor.pid },
    );
  }

  /**
   * Settled: our workers take the new connections (steered, our program
   * replaces the old instance's on the port), and the old instance is asked
   * to stop gracefully; its exit comes back as an event.
   */
  advance(now: number): void {
    const takeover = this.#takeover;
    if (takeover?.stage !== "settling" || now < takeover.until) return;
    takeover.stage = "stopping";
    this.seam.steering.release();
    this.seam.workers.steer();
    // systemd follows this supervisor before the old one exits (or it would count the service dead).
    this.seam.report.silent = false;
    this.seam.report.ready(true);
    const { predecessor, stopPredecessor } = this.seam.connection()!.takeover!;
    log.info(
      "takeover.stopping",
      `${this.seam.workers.desired} worker(s) serve; stopping the old instance (pid ` +
        `${predecessor.pid}) gracefully`,
      { role: "supervisor", pid: predecessor.pid },
    );
    void stopPredecessor().then((end) => this.seam.push({ kind: "predecessor-gone", end }));
  }

  /** When a takeover's settling ends, or Infinity. */
  nextDeadline(): number {
    return this.#takeover?.stage === "settling" ? this.#takeover.until : Infinity;
  }

  /** Our new code failed before the switch: the old instance, never told, keeps serving. */
  #abortTakeover(why: string): void {
    const { predecessor } = this.seam.connection()!.takeover!;
    this.#takeover = undefined;
    log.error(
      "takeover.aborted",
      `takeover aborted: ${why}\nthe running instance "${this.seam.options.name}" (pid ` +
        `${predecessor.pid}) keeps serving; fix the code and run the takeover again`,
      { role: "supervisor", pid: predecessor.pid },
    );
    this.seam.stop(1);
  }

  /** The old instance has exited: take its name; the custom processes start now. */
  onPredecessorGone(end: PredecessorEnd): void {
    const { predecessor, claim } = this.seam.connection()!.takeover!;
    this.#takeover = undefined;
    if (this.seam.phase() === "stopping") return;
    let orphans: number;
    try {
      orphans = claim(this.seam.ports.releaseForeign());
    } catch (error) {
      log.error(
        "takeover.unclaimed",
        `the old instance is gone but its name cannot be taken: ${(error as Error).message}`,
        { role: "supervisor" },
      );
      return this.seam.stop(1);
    }
    // The name is ours: our workers go in the instance's own record now (workers.json).
    this.#recorded = "";
    this.recordWorkers();
    const afterMs = Math.round(this.seam.world.clock.now() - this.seam.startedAt);
    const version = predecessor.version ?? null;
    this.tookOver = { pid: predecessor.pid, version, at: this.seam.world.isoTime(), afterMs };
    const how = end === "killed"
      ? "it did not stop within twice its grace, so it was killed (SIGKILL)"
      : end === "gone"
      ? "it had exited meanwhile"
      : "it stopped gracefully";
    const left = orphans > 0 ? `; its ${orphans} worker(s) left serving drain now` : "";
    const which = `hotreload ${version ?? "of an unknown version"}`;
    log.info(
      "supervisor.took-over",
      `took over "${this.seam.options.name}" from pid ${predecessor.pid} (${which}): ${how}, ` +
        `${afterMs} ms after this run started${left}`,
      { role: "supervisor", pid: predecessor.pid },
    );
  }

  // ---- Upgrade ------------------------------------------------------------------------

  /**
   * `hotreload upgrade`: start our successor, `run --takeover` (takeover.ts);
   * `reply` waits until it has taken over (it asks us to stop) or has exited.
   */
  startUpgrade(runArgs: string[] | undefined, reply: (reply: ControlReply) => void): void {
    const refuse = (error: string) => reply({ ok: false, error, kind: "failure" });
    const phase = this.seam.phase();
    if (phase !== "running") {
      return refuse(
        phase === "starting"
          ? "the instance is still starting; upgrade it once it is ready"
          : "the instance is stopping",
      );
    }
    if (this.#upgrade) {
      return refuse(`an upgrade is under way (supervisor pid ${this.#upgrade.pid})`);
    }
    const { world } = this.seam;
    if (!world.spawnSuccessor) return refuse("this supervisor cannot start a successor");
    let successor;
    try {
      successor = world.spawnSuccessor(runArgs);
    } catch (error) {
      return refuse(`cannot start the new supervisor: ${(error as Error).message.split("\n")[0]}`);
    }
    this.#upgrade = { pid: successor.pid, reply };
    log.info(
      "supervisor.upgrade",
      `upgrade: started supervisor pid ${successor.pid} to take this instance over ` +
        `(${successor.argv.join(" ")})`,
      { role: "supervisor", pid: successor.pid },
    );
    void successor.exited.then((status) =>
      this.seam.push({ kind: "successor-exited", pid: successor.pid, status })
    );
  }

  /** The successor exited before it took over: we serve on, and whoever asked hears why. */
  onSuccessorExited(pid: number, status: Deno.CommandStatus): void {
    if (this.#upgrade?.pid !== pid) return;
    const { reply } = this.#upgrade;
    this.#upgrade = undefined;
    const error =
      `the new supervisor (pid ${pid}) exited with ${describeExit(status)} before it took over; ` +
      `"${this.seam.options.name}" (pid ${Deno.pid}) keeps serving; the instance's log says why`;
    log.error("upgrade.failed", error, { role: "supervisor", pid });
    reply({ ok: false, error, kind: "failure" });
  }

  /**
   * Stopping (`successor`: the supervisor taking this instance over, which
   * speaks to systemd from now on): an upgrade under way succeeded if its
   * successor asked us to stop, else it ends.
   */
  onStopping(successor: number | undefined): void {
    if (successor !== undefined) this.seam.report.silent = true;
    const upgrade = this.#upgrade;
    if (!upgrade) return;
    this.#upgrade = undefined;
    upgrade.reply(
      upgrade.pid === successor
        ? { ok: true, message: `taken over by supervisor pid ${successor}` }
        : { ok: false, error: "the instance was stopped during the upgrade", kind: "failure" },
    );
  }

  /**
   * Keeps the record of live workers current (for a successor, if we die),
   * each worker from its spawn, before it can serve. Taking over, the
   * instance's record is the old one's until it is gone: ours is kept apart.
   */
  recordWorkers(): void {
    const { world, workers } = this.seam;
    if (!world.recordWorkers) return;
    const pids = workers.children().filter((c) => c.state !== "exited").map((c) => c.pid);
    const key = pids.join(",");
    if (key === this.#recorded) return;
    this.#recorded = key;
    world.recordWorkers(pids);
  }
}
