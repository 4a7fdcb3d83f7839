/**
 * The supervisor: one loop that moves the running children toward the wanted
 * state. Signals, file changes, the control socket and children only push
 * events; the loop handles each event, then reconciles: enforce deadlines,
 * start what is missing, advance the rolling reload, stop when asked.
 *
 * Workers live in the WorkerPool, custom processes in the ProcessSet; a
 * reload (Rollout) replaces the workers first, the canary before the rest,
 * then restarts the custom processes that reload with the code.
 */
import { type Child, describeExit } from "../child/child.ts";
import type { ChildMessage } from "../runtime/protocol.ts";
import type { ControlReply, ControlRequest, StatusReport, StatusRow } from "../control/protocol.ts";
import { droppedOutput, log } from "../log/mod.ts";
import type { Change, ChangeBatch, WatchOptions } from "../watch/mod.ts";
import type { BackoffPolicy } from "./backoff.ts";
import type { WorkerLaunch } from "./child_command.ts";
import { EventQueue } from "./event_queue.ts";
import { MAX_WORKERS } from "../config/limits.ts";
import { TCP_MIGRATE_REQ_HINT } from "./kernel.ts";
import { type Connection, realWorld, type World } from "./world.ts";
import { Metrics, type MetricsSnapshot, scrapedFamilies } from "./metrics.ts";
import { ProcessSet } from "./process_set.ts";
import { describeChanges, type ReloadRequest, Rollout, type RolloutState } from "./rollout.ts";
import { ERRORED_AFTER, WorkerPool } from "./worker_pool.ts";
import { foreignListener } from "./port_owners.ts";
import { UsageSampler } from "./sampler.ts";
import type { RecordedProcess } from "../control/instance_dir.ts";
import type { Predecessor, PredecessorEnd } from "./takeover.ts";

/** Everything the supervisor needs to run one instance: the run settings, and where it runs. */
export type SupervisorOptions = WorkerLaunch & {
  /** `.hotreload/<name>/`, where the control socket lives. */
  instanceDir: string;
  /** File watching; undefined with --no-watch. */
  watch?: Omit<WatchOptions, "onBatch">;
  /** Checks the `--env-file` files before a reload; returns what is wrong, if anything. */
  checkEnv?: () => string | undefined;
  /** Workers a supervisor of this name that died left serving: drained once ours are ready. */
  orphans?: { supervisor: number; version?: string; workers: RecordedProcess[] };
  /** run --takeover: the running instance this one replaces, and how to claim its name. */
  takingOver?: { predecessor: Predecessor; claim(): void };
  /** hotreload's version, for `hotreload_build_info`. */
  version?: string;
  backoff?: BackoffPolicy;
};

type SupervisorEvent =
  | { kind: "message"; child: Child; message: ChildMessage }
  | { kind: "exit"; child: Child; status: Deno.CommandStatus }
  | { kind: "signal"; signal: Deno.Signal }
  | { kind: "changes"; batch: ChangeBatch }
  | { kind: "control"; request: ControlRequest; reply: (reply: ControlReply) => void }
  | { kind: "reload"; request: ReloadRequest }
  | { kind: "predecessor-gone"; end: PredecessorEnd }
  | { kind: "successor-exited"; pid: number; status: Deno.CommandStatus };

/** Files a spare reads only when released: the app's own modules. */
const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;

/** How long a stop waits for the watcher, the control socket and the metrics port to close. */
const CLOSE_DEADLINE_MS = 2000;

/** Consecutive samples above --max-memory before a worker is recycled ("stays above"). */
const SAMPLES_OVER_LIMIT = 2;

/** The ports a worker serves: those it reported listening on, else its main port. */
function portsOf(child: Child): number[] {
  if (child.ports.size > 0) return [...child.ports];
  return child.port === undefined ? [] : [child.port];
}

export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #world: World;
  readonly #events: EventQueue<SupervisorEvent>;
  readonly #workers: WorkerPool;
  readonly #processes: ProcessSet;
  #generation = 1;
  #rollout?: Rollout;
  #phase: "starting" | "running" | "stopping" | "stopped" = "starting";
  #processesStopping = false;
  readonly #startedAt: number;
  #exitCode = 0;
  #connection?: Connection;
  readonly #sampler = new UsageSampler();
  readonly #samplesOverLimit = new WeakMap<Child, number>();
  #nextSampleAt = 0;
  /** The last reload's outcome, for `status`. */
  #lastReload?: StatusReport["supervisor"]["lastReload"];
  /** The ports workers have bound (status shows them). */
  readonly #boundPorts = new Set<number>();
  /** True once the "app ignores --port" warning was given. */
  #saidWrongPort = false;
  /** The live workers last recorded for a successor (pids). */
  #recordedWorkers = "";
  /** The supervisor this one succeeded, when it adopted its orphaned workers. */
  #succeeded?: { pid: number; version: string | null; workers: number; at: string };
  /**
   * A takeover under way (run --takeover): "starting" until every worker is
   * ready, "settling" until `until` (--settle), then "stopping" the instance
   * it replaces. Until "stopping", our workers are not steered and the old
   * instance serves; a worker that fails ends the takeover, and the old
   * instance never knew.
   */
  #takeover?: { stage: "starting" | "settling" | "stopping"; until: number };
  /** Taking over until the switch, or stopping because taken over: see #notify. */
  #silentToServiceManager = false;
  /** The successor this supervisor started (hotreload upgrade), and who waits for its outcome. */
  #upgrade?: { pid: number; reply: (reply: ControlReply) => void };
  /** The instance this one took over, once it is gone. */
  #tookOver?: { pid: number; version: string | null; at: string; afterMs: number };
  /** The newest generation whose failure to start has been said. */
  #waitingSaid = 0;
  /** A listener could not be released (said once). */
  #releaseProblemSaid = false;
  readonly #metrics = new Metrics();
  #nextWatchdogAt = 0;

  /** `world` is the operating system; unit tests pass a fake one. */
  constructor(options: SupervisorOptions, world: World = realWorld(options)) {
    this.#options = options;
    this.#world = world;
    this.#events = new EventQueue(world.clock);
    this.#startedAt = world.clock.now();
    const listener = {
      message: (child: Child, message: ChildMessage) =>
        this.#events.push({ kind: "message", child, message }),
      exit: (child: Child, status: Deno.CommandStatus) =>
        this.#events.push({ kind: "exit", child, status }),
    };
    const seam = { listener, spawn: world.spawn, clock: world.clock, counters: this.#metrics };
    this.#workers = new WorkerPool({
      ...options,
      ...seam,
      // Called before any worker drains: it leaves the steered set first.
      steer: (serving) =>
        this.#connection?.handover.steer(serving.map((c) => ({ pid: c.pid, ports: portsOf(c) }))),
      release: (leaving, held) => this.#releaseListeners(leaving, held),
      // Before a takeover's switch, a failed worker ends the takeover instead.
      restarts: () => !this.#takeover || this.#takeover.stage === "stopping",
    });
    this.#processes = new ProcessSet({ ...options, ...seam });
  }

  /** Runs until stopped; resolves with the process exit code. */
  async run(): Promise<number> {
    this.#connection = await this.#world.connect({
      signal: (signal) => this.#events.push({ kind: "signal", signal }),
      changes: (batch) => this.#events.push({ kind: "changes", batch }),
      control: (request, reply) => this.#events.push({ kind: "control", request, reply }),
      metrics: () => this.#metrics.render(scrapedFamilies(this.#metricsSnapshot())),
    });
    if (this.#connection.takeover) {
      this.#takeover = { stage: "starting", until: Infinity };
      this.#silentToServiceManager = true;
      // The old instance's steering stands until our workers have settled.
      this.#workers.holdSteering();
    }
    this.#announceStart();
    try {
      while (true) {
        // One clock reading per pass: what reconcile decided not to do yet and
        // when to wake up for it must agree, or a retry due in between is lost.
        const now = this.#world.clock.now();
        this.#reconcile(now);
        this.#feedWatchdog(now);
        if (this.#phase === "stopped") break;
        const event = await this.#events.next(this.#msUntilNextDeadline(now));
        if (event) this.#handle(event);
      }
    } finally {
      await this.#cleanUp();
    }
    return this.#exitCode;
  }

  // ---- Events --------------------------------------------------------------------

  #handle(event: SupervisorEvent): void {
    switch (event.kind) {
      case "message":
        return this.#onChildMessage(event.child, event.message);
      case "exit":
        return this.#onChildExit(event.child, event.status);
      case "signal":
        return this.#onSignal(event.signal);
      case "changes":
        return this.#onChanges(event.batch.changes);
      case "control":
        return this.#onControl(event.request, event.reply);
      case "reload":
        return this.#requestReload(event.request);
      case "predecessor-gone":
        return this.#onPredecessorGone(event.end);
      case "successor-exited":
        return this.#onSuccessorExited(event.pid, event.status);
    }
  }

  #onChildMessage(child: Child, message: ChildMessage): void {
    if (child.spec.role === "process") {
      if (message.t === "ready") this.#processes.onReady(child);
      if (message.t === "restart-requested") this.#processes.onRestartRequested(child);
      return;
    }
    if (message.t === "listening") {
      if (message.releasable) child.releasable.add(message.port);
      else child.releasable.delete(message.port);
      this.#onWorkerListening(child, message.port);
    }
    if (message.t === "ready") this.#onWorkerReady(child, message.port);
    if (message.t === "bind-error") this.#onBindError(child, message.port, message.message);
    if (message.t === "requests") child.requestsServed = message.served;
    if (message.t === "draining") {
      child.openRequests = message.open;
      child.relaying = message.relaying;
      child.accepting = message.accepting;
    }
    if (message.t === "recycle") this.#workers.markForRecycle(child, message.reason);
  }

  /**
   * Workers about to drain: their Deno.serve listeners are stopped from
   * outside (handover/release.ts), all before any is told to drain, while
   * their connections stay open. Where that cannot be done, each keeps its
   * listener until its close window ends, and new connections keep reaching
   * it meanwhile (it sends their requests on): said once.
   */
  #releaseListeners(leaving: readonly Child[], held = false): void {
    // Steered, a held worker can be put back: it keeps its listener (steering keeps it idle).
    if (held && this.#connection?.handover.mode === "ebpf") return;
    for (const child of leaving) {
      // Released when it was held, or when it began to drain.
      if (child.released || child.state === "draining" || child.releasable.size === 0) continue;
      child.released = true;
      const problem = this.#connection?.handover.release(child.pid, [...child.releasable]);
      if (problem === undefined || this.#releaseProblemSaid) continue;
      this.#releaseProblemSaid = true;
      log.warn(
        "handover.unreleased",
        `cannot stop a draining worker's listener from outside (${problem}): each keeps its ` +
          `listener until its close window ends, sending on the requests that reach it`,
        { role: "supervisor", pid: child.pid },
      );
    }
  }

  /**
   * Releases a worker that is not ours (a dead supervisor's orphan): it
   * said nothing to us of its ports, so ours that only Deno.serve listens on
   * (the same app's) are stopped; its own are searched for them.
   */
  #releaseForeign(): (pid: number) => void {
    const ports = [...new Set(this.#workers.children().flatMap((child) => [...child.releasable]))];
    return (pid) => {
      if (ports.length > 0) this.#connection?.handover.release(pid, ports);
    };
  }

  #onWorkerReady(child: Child, port: number | undefined): void {
    if (child.state !== "starting") return;
    child.port = port ?? this.#options.port;
    this.#workers.onReady(child);
    this.#checkMainPort(child);
    if (this.#rollout && this.#rollout.request.workers) {
      const ready = this.#workers.readyOf(this.#rollout.generation);
      this.#notify(
        `STATUS=reloading ${ready}/${this.#workers.desired} (generation ${this.#rollout.generation})`,
      );
    }
    if (this.#phase === "starting" && this.#workers.allReady()) {
      this.#phase = "running";
      const ms = Math.round(this.#world.clock.now() - this.#startedAt);
      log.info("supervisor.ready", `${this.#workers.desired} worker(s) ready in ${ms} ms`, {
        role: "supervisor",
      });
      void this.#connection?.graphs?.refresh();
      if (this.#takeover) return this.#settleBeforeTakeover();
      this.#notify("READY=1", `STATUS=${this.#statusLine()}`, `MAINPID=${Deno.pid}`);
      this.#drainOrphans();
    }
  }

  /**
   * Every port a worker listens on is the pool's: shared (reusePort), in
   * status, steered (one group per port), drained. The first time a port is
   * seen, it must not be shared with an app that is not ours, which
   * reusePort would silently let the kernel split traffic with (--port was
   * checked at start).
   */
  #onWorkerListening(child: Child, port: number): void {
    this.#connection?.handover.listening(child.pid, port);
    child.ports.add(port);
    // A serving worker that opens another port: steer that port too.
    if (child.state === "ready") this.#workers.steer();
    if (this.#boundPorts.has(port)) return;
    this.#boundPorts.add(port);
    if (port === this.#options.port) return;
    const ours = new Set([
      Deno.pid,
      ...this.#workers.children().map((c) => c.pid),
      ...this.#world.formerWorkers?.() ?? [],
    ]);
    const other = foreignListener(port, (pid, pgid) => ours.has(pid) || ours.has(pgid));
    if (!other) return;
    const who = other.command
      ? `pid ${other.pid}: ${other.command.slice(0, 120)}`
      : `pid ${other.pid}`;
    log.error(
      "worker.foreign-listener",
      `port ${port} is already served by another process (${who}); with reusePort the kernel ` +
        `would split the traffic between both apps: stop it, or give this app another port (--port)`,
      { role: "worker" as const, id: child.spec.id, pid: child.pid, port },
    );
    this.#exitCode = 1;
    this.#beginStop(true);
  }

  /** With --port, a ready worker that never bound it is named, once (the app ignores --port). */
  #checkMainPort(child: Child): void {
    const wanted = this.#options.port;
    if (wanted === undefined || child.ports.size === 0 || child.ports.has(wanted)) return;
    if (this.#saidWrongPort) return;
    this.#saidWrongPort = true;
    const listened = [...child.ports].sort((a, b) => a - b).join(", ");
    log.warn(
      "worker.wrong-port",
      `worker ${child.spec.id} listens on port ${listened}, not on --port ${wanted}: the app ignores ` +
        `--port; read PORT in the app (Deno.env.get("PORT"), process.env.PORT), or drop --port`,
      { role: "worker", id: child.spec.id, pid: child.pid, port: [...child.ports][0] },
    );
  }

  #onBindError(child: Child, port: number | undefined, message: string): void {
    const where = port === undefined ? "its port" : `port ${port}`;
    if (!this.#workers.everReady) {
      // Nothing has ever served: this is bad input, not a crash to retry forever.
      if (this.#phase === "stopping") return; // said once, for the first worker that failed
      log.error(
        "worker.bind-error",
        `cannot listen: ${where} is already in use by another process; stop it or choose another --port`,
        { role: "worker", id: child.spec.id, pid: child.pid },
      );
      this.#exitCode = 1;
      this.#beginStop(true);
      return;
    }
    this.#workers.explainExit(child, `could not listen on ${where} (address in use)`);
    log.warn("worker.bind-error", `worker ${child.spec.id} cannot listen on ${where}: ${message}`, {
      role: "worker",
      id: child.spec.id,
      pid: child.pid,
    });
  }

  #onChildExit(child: Child, status: Deno.CommandStatus): void {
    if (child.spec.role === "process") return this.#processes.onExit(child, status);
    this.#connection?.handover.gone(child.pid);
    const outcome = this.#workers.onExit(child, status, this.#generation);
    // Before the switch, new code that fails ends the takeover: broken code never replaces working code.
    const beforeSwitch = this.#takeover && this.#takeover.stage !== "stopping";
    if (outcome.kind === "crashed" && beforeSwitch && this.#phase !== "stopping") {
      const output = outcome.summary === "no output" ? "" : `: ${outcome.summary}`;
      return this.#abortTakeover(`worker ${child.spec.id} ${outcome.why}${output}`);
    }
    // New code failing during its reload is the rollout's to judge (it may abort).
    if (this.#rollout?.onWorkerExit(child, outcome)) return;
    if (outcome.kind === "replacement-failed") {
      log.warn("worker.replacement-failed", `${outcome.why}; retrying`, { role: "worker" });
      return;
    }
    if (outcome.kind !== "crashed" || outcome.wasReady) return;
    // A worker that never became ready: code that does not start.
    if (this.#workers.everReady) return;
    if (!this.#options.watch && outcome.failures >= ERRORED_AFTER) {
      // Nobody is watching to fix it: say so and end, so a script or systemd sees it.
      log.error(
        "supervisor.gave-up",
        `the app never became ready: worker ${child.spec.id} failed ${outcome.failures} times in ` +
          `a row (${outcome.summary}); giving up`,
        { role: "supervisor" },
      );
      this.#exitCode = 1;
      return this.#beginStop(true);
    }
    // Unwatched, the give-up above speaks for a start that never works.
    if (this.#options.watch) this.#waitForChange(child.spec.generation, outcome.summary);
  }

  /** Says once per generation that nothing serves and what a fix must address. */
  #waitForChange(generation: number, summary: string): void {
    if (this.#waitingSaid >= generation || this.#workers.anyServing()) return;
    this.#waitingSaid = generation;
    log.warn(
      "supervisor.waiting",
      `waiting for a change (generation ${generation} failed: ${summary})`,
      {
        role: "supervisor",
        generation,
      },
    );
  }

  #onSignal(signal: Deno.Signal): void {
    switch (signal) {
      case "SIGHUP":
      case "SIGUSR2": // the custom processes only
        return this.#requestReload({
          reason: signal,
          files: [],
          workers: signal === "SIGHUP",
          processes: true,
        });
      case "SIGTTIN":
        return this.#scale(this.#workers.desired + 1, "SIGTTIN");
      case "SIGTTOU":
        return this.#scale(this.#workers.desired - 1, "SIGTTOU");
      case "SIGQUIT":
        return this.#beginStop(true);
      case "SIGTERM":
      case "SIGINT":
        // A second request while draining means "now".
        return this.#beginStop(this.#phase === "stopping");
    }
  }

  #onControl(request: ControlRequest, reply: (reply: ControlReply) => void): void {
    switch (request.cmd) {
      case "stop":
        this.#beginStop(request.fast === true || this.#phase === "stopping", request.successor);
        return reply({ ok: true });
      case "reload":
        return this.#requestReload({
          reason: "reload command",
          files: [],
          workers: request.workers ?? true,
          processes: request.processes ?? true,
          reply,
        });
      case "send": {
        const sent = this.#processes.send(request.name, request.message);
        if (sent > 0) return reply({ ok: true, message: `delivered to ${sent} instance(s)` });
        return reply(this.#noSuchProcess(request.name));
      }
      case "restart": {
        const queued = this.#processes.queueRestart((config) => config.name === request.name);
        if (queued === 0) return reply(this.#noSuchProcess(request.name));
        return reply({
          ok: true,
          message: `restarting ${queued} instance(s) of "${request.name}", one at a time`,
        });
      }
      case "status":
        return reply({ ok: true, status: this.#status() });
      case "upgrade":
        return this.#startUpgrade(request.args, reply);
      case "scale":
        // parseRequest has checked the bounds.
        this.#scale(request.workers, "scale command");
        return reply({ ok: true, message: `scaling to ${request.workers} worker(s)` });
    }
  }

  #scale(workers: number, reason: string): void {
    if (workers < 1 || workers > MAX_WORKERS) return;
    if (this.#phase === "stopping" || workers === this.#workers.desired) return;
    log.info(
      "supervisor.scale",
      `scaling from ${this.#workers.desired} to ${workers} worker(s) (${reason})`,
      { role: "supervisor", workers },
    );
    this.#workers.desired = workers;
  }

  /** Everything `hotreload status` shows; the JSON shape is documented in the README. */
  #status(): StatusReport {
    const usage = (child: Child) => this.#sampler.sample(child);
    const children: StatusRow[] = [
      ...this.#workers.statusRows(usage),
      ...this.#processes.statusRows(usage),
    ];
    return {
      supervisor: {
        name: this.#options.name,
        pid: Deno.pid,
        uptimeMs: Math.round(this.#world.clock.now() - this.#startedAt),
        phase: this.#phase,
        entry: this.#options.entry,
        port: this.#options.port ?? null,
        boundPorts: [...this.#boundPorts].sort((a, b) => a - b),
        host: this.#options.host ?? null,
        workers: this.#workers.desired,
        generation: this.#generation,
        watcher: this.#connection?.watcher?.backend ?? null,
        graphs: this.#connection?.graphs?.describe() ?? null,
        succeeded: this.#succeeded ?? null,
        tookOver: this.#tookOver ?? null,
        handover: this.#connection?.handover.mode ?? null,
        reloading: this.#rollout !== undefined,
        lastReload: this.#lastReload ?? null,
        rssBytes: Deno.memoryUsage().rss,
        droppedLines: droppedOutput(),
      },
      children,
    };
  }

  #noSuchProcess(name: string): ControlReply {
    const names = this.#processes.names();
    const known = names.length > 0 ? `; processes: ${names.join(", ")}` : "; none is configured";
    return { ok: false, error: `no running process named "${name}"${known}`, kind: "not-running" };
  }

  // ---- Reconciliation --------------------------------------------------------------

  /**
   * Succession: the workers a supervisor that died left serving (waiting for
   * a successor, --orphan-grace) drain once ours are ready, so the port was
   * never dark. They are not our children: each is signalled only after its
   * pid is checked to still be the process recorded (world.ts).
   */
  #drainOrphans(): void {
    const orphans = this.#world.orphans;
    if (!orphans) return;
    const drained = orphans.drain(this.#releaseForeign());
    this.#succeeded = {
      pid: orphans.supervisor,
      version: orphans.version ?? null,
      workers: drained,
      at: new Date().toISOString(),
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
  #settleBeforeTakeover(): void {
    const { predecessor } = this.#connection!.takeover!;
    this.#takeover = { stage: "settling", until: this.#world.clock.now() + this.#options.settle };
    log.info(
      "takeover.settling",
      `taking over pid ${predecessor.pid} once the workers have run for ${this.#options.settle} ms ` +
        `(--settle)`,
      { role: "supervisor", pid: predecessor.pid },
    );
  }

  /**
   * Settled: our workers take the new connections (steered, our program
   * replaces the old instance's on the port), and the old instance is asked
   * to stop gracefully; its exit comes back as an event.
   */
  #advanceTakeover(now: number): void {
    const takeover = this.#takeover;
    if (takeover?.stage !== "settling" || now < takeover.until) return;
    takeover.stage = "stopping";
    this.#workers.releaseSteering();
    // systemd follows this supervisor before the old one exits (or it would count the service dead).
    this.#silentToServiceManager = false;
    this.#notify("READY=1", `STATUS=${this.#statusLine()}`, `MAINPID=${Deno.pid}`);
    const { predecessor, stopPredecessor } = this.#connection!.takeover!;
    log.info(
      "takeover.stopping",
      `${this.#workers.desired} worker(s) serve; stopping the old instance (pid ${predecessor.pid}) ` +
        `gracefully`,
      { role: "supervisor", pid: predecessor.pid },
    );
    void stopPredecessor().then((end) => this.#events.push({ kind: "predecessor-gone", end }));
  }

  /** Our new code failed before the switch: the old instance, never told, keeps serving. */
  #abortTakeover(why: string): void {
    const { predecessor } = this.#connection!.takeover!;
    this.#takeover = undefined;
    log.error(
      "takeover.aborted",
      `takeover aborted: ${why}\nthe running instance "${this.#options.name}" (pid ` +
        `${predecessor.pid}) keeps serving; fix the code and run the takeover again`,
      { role: "supervisor", pid: predecessor.pid },
    );
    this.#exitCode = 1;
    this.#beginStop(false);
  }

  /** The old instance has exited: take its name; the custom processes start now. */
  #onPredecessorGone(end: PredecessorEnd): void {
    const { predecessor, claim } = this.#connection!.takeover!;
    this.#takeover = undefined;
    if (this.#phase === "stopping") return;
    let orphans: number;
    try {
      orphans = claim(this.#releaseForeign());
    } catch (error) {
      log.error(
        "takeover.unclaimed",
        `the old instance is gone but its name cannot be taken: ${(error as Error).message}`,
        { role: "supervisor" },
      );
      this.#exitCode = 1;
      return this.#beginStop(false);
    }
    // The name is ours: our workers go in the instance's own record now (workers.json).
    this.#recordedWorkers = "";
    this.#recordWorkers();
    const afterMs = Math.round(this.#world.clock.now() - this.#startedAt);
    const version = predecessor.version ?? null;
    this.#tookOver = { pid: predecessor.pid, version, at: new Date().toISOString(), afterMs };
    const how = end === "killed"
      ? "it did not stop within twice its grace, so it was killed (SIGKILL)"
      : end === "gone"
      ? "it had exited meanwhile"
      : "it stopped gracefully";
    const left = orphans > 0 ? `; its ${orphans} worker(s) left serving drain now` : "";
    const which = `hotreload ${version ?? "of an unknown version"}`;
    log.info(
      "supervisor.took-over",
      `took over "${this.#options.name}" from pid ${predecessor.pid} (${which}): ${how}, ` +
        `${afterMs} ms after this run started${left}`,
      { role: "supervisor", pid: predecessor.pid },
    );
  }

  /**
   * `hotreload upgrade`: start our successor, `run --takeover` (takeover.ts);
   * `reply` waits until it has taken over (it asks us to stop) or has exited.
   */
  #startUpgrade(runArgs: string[] | undefined, reply: (reply: ControlReply) => void): void {
    const refuse = (error: string) => reply({ ok: false, error, kind: "failure" });
    if (this.#phase !== "running") {
      return refuse(
        this.#phase === "starting"
          ? "the instance is still starting; upgrade it once it is ready"
          : "the instance is stopping",
      );
    }
    if (this.#upgrade) {
      return refuse(`an upgrade is under way (supervisor pid ${this.#upgrade.pid})`);
    }
    if (!this.#world.spawnSuccessor) return refuse("this supervisor cannot start a successor");
    let successor;
    try {
      successor = this.#world.spawnSuccessor(runArgs);
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
      this.#events.push({ kind: "successor-exited", pid: successor.pid, status })
    );
  }

  /** The successor exited before it took over: we serve on, and whoever asked hears why. */
  #onSuccessorExited(pid: number, status: Deno.CommandStatus): void {
    if (this.#upgrade?.pid !== pid) return;
    const { reply } = this.#upgrade;
    this.#upgrade = undefined;
    const error =
      `the new supervisor (pid ${pid}) exited with ${describeExit(status)} before it took over; ` +
      `"${this.#options.name}" (pid ${Deno.pid}) keeps serving; the instance's log says why`;
    log.error("upgrade.failed", error, { role: "supervisor", pid });
    reply({ ok: false, error, kind: "failure" });
  }

  /**
   * Keeps the record of live workers current (for a successor, if we die),
   * each worker from its spawn, before it can serve. Taking over, the
   * instance's record is the old one's until it is gone: ours is kept apart.
   */
  #recordWorkers(): void {
    if (!this.#world.recordWorkers) return;
    const pids = this.#workers.children().filter((c) => c.state !== "exited").map((c) => c.pid);
    const key = pids.join(",");
    if (key === this.#recordedWorkers) return;
    this.#recordedWorkers = key;
    this.#world.recordWorkers(pids);
  }

  #reconcile(now: number): void {
    this.#recordWorkers();
    this.#workers.enforceDeadlines(now);
    this.#processes.enforceDeadlines(now);
    if (this.#phase === "stopping") return this.#continueStopping();
    this.#sampleMemory(now);
    this.#workers.fill(now, this.#generation);
    // Taking over: two queue consumers must not run side by side; ours start once the old ones are gone.
    if (!this.#takeover) this.#processes.fill(now, this.#generation);
    this.#workers.replaceRecycled(now, this.#generation);
    this.#advanceTakeover(now);
    this.#advanceRollout(now);
    this.#processes.advanceRestarts();
    // Workers started just now are recorded before they can serve.
    this.#recordWorkers();
  }

  #advanceRollout(now: number): void {
    const rollout = this.#rollout;
    if (!rollout) return;
    const step = rollout.advance(now);
    if (step.state === "done") this.#finishRollout(rollout);
    if (step.state === "aborted") this.#abortRollout(rollout, step);
  }

  /** Marks workers whose memory stays above --max-memory for recycling. */
  #sampleMemory(now: number): void {
    const limitMB = this.#options.maxMemory;
    if (limitMB === undefined || now < this.#nextSampleAt) return;
    this.#nextSampleAt = now + this.#options.memoryCheckInterval;
    for (const child of this.#workers.serving()) {
      const usage = this.#sampler.sample(child);
      if (!usage) continue;
      const overMB = usage.rssBytes / 2 ** 20;
      const over = overMB > limitMB ? (this.#samplesOverLimit.get(child) ?? 0) + 1 : 0;
      this.#samplesOverLimit.set(child, over);
      if (over >= SAMPLES_OVER_LIMIT) {
        this.#workers.markForRecycle(
          child,
          `uses ${Math.round(overMB)} MB, above --max-memory ${limitMB} MB`,
        );
      }
    }
  }

  // ---- Rolling reload --------------------------------------------------------------

  /**
   * A change reloads the children whose module graph holds a changed file
   * (module_graph.ts): the workers, some processes, everything, or nothing,
   * each file by a rule the log names (reload_scope.ts).
   */
  #onChanges(changes: Change[]): void {
    const files = changes.map((change) => change.path);
    const scope = this.#connection?.graphs?.scope(changes);
    if (scope?.kind === "nothing") {
      log.info(
        "reload.skipped",
        `${describeChanges(files, "changed")}: nothing to reload; ${scope.why}`,
        { role: "supervisor", files, decisions: scope.decisions },
      );
      return;
    }
    const everything = scope === undefined || scope.kind === "everything";
    this.#requestReload({
      reason: "change",
      files,
      why: scope?.why,
      workers: everything || scope.workers,
      processes: everything || scope.processes.length > 0,
      processNames: everything ? undefined : scope.processes,
    });
  }

  #requestReload(request: ReloadRequest): void {
    if (this.#phase === "stopping" || this.#phase === "stopped") {
      request.reply?.({ ok: false, error: "the instance is stopping", kind: "failure" });
      return;
    }
    const cause = request.files.length > 0
      ? describeChanges(request.files, "changed")
      : request.reason;
    // Why these children (reload_scope.ts), after what happens.
    const why = request.why ? `; ${request.why}` : "";
    if (this.#rollout) {
      // Coalesce: whatever arrives during a rollout becomes exactly one follow-up.
      this.#rollout.queueFollowUp(request);
      this.#rollout.supersede();
      log.info("reload.queued", `${cause} during the reload; one more reload will follow${why}`, {
        role: "supervisor",
        files: request.files,
      });
      return;
    }
    // A broken env file is broken code: refused before anything starts.
    const envError = this.#options.checkEnv?.();
    if (envError) {
      const why = `reload aborted: ${envError}`;
      log.error("reload.aborted", `${why}\nthe running workers keep their environment`, {
        role: "supervisor",
      });
      this.#metrics.reloads.inc({ outcome: "aborted" });
      request.reply?.({ ok: false, error: why, kind: "failure" });
      return;
    }
    this.#generation++;
    // The reload's files may change what imports what: the graphs wait for their refresh.
    if (request.files.length > 0) this.#connection?.graphs?.invalidate();
    this.#rollout = new Rollout(
      this.#generation,
      request,
      this.#world.clock.now(),
      this.#workers,
      {
        queueReloads: (names) =>
          this.#processes.queueRestart((config) =>
            config.reload && (names === undefined || names.includes(config.name))
          ),
        restarting: () => this.#processes.restarting(),
      },
      {
        oneStep: this.#options.oneStepSwitch,
        reloadBatch: this.#options.reloadBatch,
        settleMs: this.#options.settle,
        canPutBack: this.#connection?.handover.mode === "ebpf",
      },
      this.#workers.anyServing(),
    );
    this.#notify(
      "RELOADING=1",
      `MONOTONIC_USEC=${this.#world.notifier?.monotonicUsec() ?? 0}`,
      `STATUS=reloading to generation ${this.#generation}`,
    );
    // A spare has read everything but the app's modules when it started: when
    // anything else may have changed (deno.json, an import map, the lock, an env
    // file, or a reload without a list of files), it must not serve the new generation.
    if (request.files.length === 0 || request.files.some((file) => !SOURCE.test(file))) {
      this.#workers.discardSpares();
    }
    // New code is tried at once: backoff slows down the same code crashing again, never new code.
    if (request.workers) this.#workers.retryNow();
    if (request.processes) this.#processes.retryNow();
    const what = request.workers ? `${this.#workers.desired} worker(s)` : "the custom processes";
    log.info(
      "reload.start",
      `${cause}: reloading ${what} to generation ${this.#generation}${why}`,
      {
        role: "supervisor",
        generation: this.#generation,
        files: request.files,
      },
    );
  }

  #finishRollout(rollout: Rollout): void {
    this.#rollout = undefined;
    // A change may have restarted only some processes (module_graph.ts): count those.
    const names = rollout.request.processNames;
    const processes =
      this.#processes.children().filter((child) =>
        names === undefined || names.some((name) => String(child.spec.id).startsWith(`${name}#`))
      ).length;
    const ready = rollout.request.workers
      ? this.#workers.readyOf(rollout.generation)
      : this.#workers.desired;
    const now = this.#world.clock.now();
    const summary = rollout.summary(this.#workers.desired, ready, processes, now);
    if (rollout.request.files.length > 0) {
      this.#metrics.changeToReady.observe((now - rollout.startedAt) / 1000);
    }
    this.#notify("READY=1", `STATUS=${this.#statusLine()}`);
    log.info("reload.done", summary, {
      role: "supervisor",
      generation: rollout.generation,
      files: rollout.request.files,
    });
    this.#endRollout(rollout, { ok: true, message: summary, generation: rollout.generation });
  }

  #abortRollout(
    rollout: Rollout,
    { why, summary, switched, putBack }: Extract<RolloutState, { state: "aborted" }>,
  ): void {
    this.#rollout = undefined;
    const then = putBack
      ? "the old workers, held until the new ones settled, serve again; the next change or reload tries again"
      : switched && this.#workers.anyServing()
      ? `the old workers had drained already (no steering to put them back, see "Broken code" ` +
        `in the README); the new workers still up keep serving`
      : this.#workers.anyServing()
      ? "the old workers keep serving; the next change or reload tries again"
      : this.#options.watch
      ? `nothing serves: waiting for a change (generation ${rollout.generation} failed: ${summary})`
      : `nothing serves: fix it, then "hotreload reload" (generation ${rollout.generation} failed: ${summary})`;
    this.#waitingSaid = rollout.generation;
    this.#notify(
      "READY=1",
      `STATUS=reload to generation ${rollout.generation} aborted; ${this.#statusLine()}`,
    );
    log.error(
      "reload.aborted",
      `reload aborted: ${why}\n${then}`,
      { role: "supervisor", generation: rollout.generation },
    );
    this.#endRollout(rollout, { ok: false, error: `reload aborted: ${why}`, kind: "failure" });
  }

  /** Counts a rollout's end, tells who waits, keeps its outcome for `status`, runs its follow-up. */
  #endRollout(rollout: Rollout, reply: ControlReply): void {
    this.#metrics.reloads.inc({ outcome: reply.ok ? "done" : "aborted" });
    this.#metrics.reloadDuration.observe((this.#world.clock.now() - rollout.startedAt) / 1000);
    rollout.settle(reply);
    this.#lastReload = {
      generation: rollout.generation,
      ok: reply.ok,
      // A failure's first line: the rest (its output) is in the log.
      message: reply.ok ? reply.message! : reply.error.split("\n")[0],
      at: new Date().toISOString(),
    };
    if (rollout.followUp) this.#events.push({ kind: "reload", request: rollout.followUp });
    // Off the critical path (once edits pause): the new code may import other files now.
    else this.#connection?.graphs?.refreshSoon();
  }

  // ---- Stopping ----------------------------------------------------------------------

  /** `successor`: the supervisor taking this instance over, which speaks to systemd now. */
  #beginStop(fast: boolean, successor?: number): void {
    if (this.#phase !== "stopping") {
      const live = this.#workers.children().length + this.#processes.children().length;
      const who = successor === undefined ? "" : ` (taken over by supervisor pid ${successor})`;
      log.info(
        "supervisor.stopping",
        fast
          ? `stopping now${who}: killing ${live} child process(es)`
          : `stopping${who}: draining the workers, then the custom processes (grace ${this.#options.grace} ms)`,
        { role: "supervisor" },
      );
      if (successor !== undefined) this.#silentToServiceManager = true;
      this.#answerUpgrade(successor);
      this.#notify("STOPPING=1", "STATUS=stopping");
    }
    this.#phase = "stopping";
    this.#rollout?.cancel({ ok: false, error: "the instance is stopping", kind: "failure" });
    this.#rollout = undefined;
    if (fast) {
      this.#workers.killAll();
      this.#processes.killAll();
      this.#processesStopping = true;
    } else {
      // Taken over, the successor's workers take our clients: they get the whole close window.
      this.#workers.drainAll(successor === undefined);
    }
  }

  /** Stopping: an upgrade under way succeeded if its successor asked us to stop, else it ends. */
  #answerUpgrade(successor: number | undefined): void {
    const upgrade = this.#upgrade;
    if (!upgrade) return;
    this.#upgrade = undefined;
    upgrade.reply(
      upgrade.pid === successor
        ? { ok: true, message: `taken over by supervisor pid ${successor}` }
        : { ok: false, error: "the instance was stopped during the upgrade", kind: "failure" },
    );
  }

  /** Workers first; custom processes once no worker is left; done when nothing is. */
  #continueStopping(): void {
    if (this.#workers.children().length > 0) return;
    if (!this.#processesStopping) {
      this.#processesStopping = true;
      this.#processes.drainAll();
    }
    if (this.#processes.children().length === 0) this.#phase = "stopped";
  }

  async #cleanUp(): Promise<void> {
    // Closing the watcher waits on Deno's watcher thread, which a FIFO in the
    // watched tree can block for good (watch/fifo.ts): a stop never waits on it long.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#connection?.close(),
      new Promise((resolve) => timer = setTimeout(resolve, CLOSE_DEADLINE_MS)),
    ]);
    clearTimeout(timer);
    this.#world.notifier?.close();
    log.info("supervisor.stopped", "stopped", { role: "supervisor" });
  }

  // ---- Helpers ------------------------------------------------------------------------

  /**
   * Tells systemd (when it asked, through NOTIFY_SOCKET); does nothing
   * otherwise. Taking over, the old supervisor speaks for the service until
   * the switch, when MAINPID= makes systemd follow this one; from then the
   * old one, stopping, says nothing (no STOPPING=1). A takeover that fails
   * never said anything.
   */
  #notify(...lines: string[]): void {
    if (this.#silentToServiceManager) return;
    this.#world.notifier?.send(...lines);
  }

  /** `4 workers ready, generation 3`: systemd's STATUS= while running. */
  #statusLine(): string {
    const ready = this.#workers.readyOf(0);
    return `${ready} worker${ready === 1 ? "" : "s"} ready, generation ${this.#generation}`;
  }

  /**
   * WATCHDOG=1 at half of WATCHDOG_USEC, sent from the loop itself: a wedged
   * loop stops feeding it, and systemd restarts the service.
   */
  #feedWatchdog(now: number): void {
    const every = this.#world.notifier?.watchdogMs;
    if (every === undefined || now < this.#nextWatchdogAt) return;
    this.#nextWatchdogAt = now + every;
    this.#notify("WATCHDOG=1");
  }

  /** What a scrape shows of the supervisor's state (metrics.ts turns it into gauges). */
  #metricsSnapshot(): MetricsSnapshot {
    const rows = [
      ...this.#workers.statusRows(() => undefined),
      ...this.#processes.statusRows(() => undefined),
    ];
    const children = [...this.#workers.children(), ...this.#processes.children()];
    return {
      version: this.#options.version ?? "dev",
      handover: this.#connection?.handover.mode ?? "none",
      generation: this.#generation,
      desiredWorkers: this.#workers.desired,
      workerStates: rows.flatMap((row) =>
        row.role === "worker" || row.role === "spare" ? [row.state] : []
      ),
      children: children.map((child) => ({
        labels: {
          role: child.spec.role,
          id: String(child.spec.id),
          pid: child.pid,
          generation: child.spec.generation,
        },
        requests: child.spec.role === "worker" ? child.requestsServed : undefined,
        usage: this.#sampler.sample(child),
      })),
      droppedLines: droppedOutput(),
      supervisorRssBytes: Deno.memoryUsage().rss,
    };
  }

  #msUntilNextDeadline(now: number): number {
    const sampling = this.#options.maxMemory === undefined ? Infinity : this.#nextSampleAt;
    const watchdog = this.#world.notifier?.watchdogMs === undefined
      ? Infinity
      : this.#nextWatchdogAt;
    const next = Math.min(
      this.#workers.nextDeadline(now),
      this.#processes.nextDeadline(now),
      this.#rollout?.nextDeadline(now) ?? Infinity,
      this.#takeover?.stage === "settling" ? this.#takeover.until : Infinity,
      sampling,
      watchdog,
    );
    return Math.max(0, next - now);
  }

  #announceStart(): void {
    const { port: wanted, host: bound, entry } = this.#options;
    const port = wanted === undefined ? "the app's own port" : `port ${wanted}`;
    const host = bound === undefined ? "" : ` of ${bound}`;
    const watcher = this.#connection?.watcher;
    const watching = watcher
      ? `watching with ${watcher.backend === "poll" ? "polling" : "file events"}`
      : "not watching";
    if (watcher?.fallbackReason) {
      log.warn("watch.fallback", `watching by polling: ${watcher.fallbackReason}`, {
        role: "supervisor",
      });
    }
    for (const note of watcher?.notes ?? []) log.info("watch.named", note, { role: "supervisor" });
    const processes = this.#options.processes.reduce((n, p) => n + p.count, 0);
    const beside = processes > 0 ? ` and ${processes} custom process(es)` : "";
    log.info(
      "supervisor.start",
      `starting ${this.#workers.desired} worker(s) of ${entry} on ${port}${host}${beside}; ${watching} (pid ${Deno.pid})`,
      { role: "supervisor", pid: Deno.pid },
    );
    const { mode, summary } = this.#connection!.handover;
    // Without a handover, say how to get one.
    const say = mode === "none" ? log.warn : log.info;
    const hint = mode === "none" ? `. ${TCP_MIGRATE_REQ_HINT}` : "";
    say("supervisor.handover", `handover: ${summary}${hint}`, {
      role: "supervisor",
      handover: mode,
    });
  }
}
