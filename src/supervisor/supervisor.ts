/**
 * The supervisor: one loop that moves the running children toward the wanted
 * state. Signals, file changes, the control socket and children only push
 * events; the loop handles each event, then reconciles: enforce deadlines,
 * start what is missing, advance the rolling reload, stop when asked.
 *
 * gunicorn's arbiter is the model: one queue, one loop, handlers named after
 * what they handle, each concern in its own module: workers in WorkerPool,
 * custom processes in ProcessSet, a reload from request to end in Reloads
 * (rollout.ts), takeover, upgrade and adoption in Succession, ports and
 * steering in ports.ts, status, metrics, systemd and log lines in Report.
 */
import type { Child } from "../child/child.ts";
import type { ChildMessage } from "../runtime/protocol.ts";
import type { ControlReply, ControlRequest } from "../control/protocol.ts";
import { log } from "../log/mod.ts";
import type { Change, ChangeBatch, WatchOptions } from "../watch/mod.ts";
import type { BackoffPolicy } from "./backoff.ts";
import type { WorkerLaunch } from "./child_command.ts";
import { EventQueue } from "./event_queue.ts";
import { cpuTimeMs } from "./clock.ts";
import { MAX_WORKERS } from "../config/limits.ts";
import { type Connection, realWorld, type World } from "./world.ts";
import { Metrics, scrapedFamilies } from "./metrics.ts";
import { ProcessSet } from "./process_set.ts";
import { Reloads } from "./rollout.ts";
import type { ReloadRequest } from "./reload_request.ts";
import { WorkerPool } from "./worker_pool.ts";
import { ERRORED_AFTER } from "./slots.ts";
import { Ports, Steering } from "./ports.ts";
import { MemoryLimit } from "./memory_limit.ts";
import { describeChanges, Report } from "./report.ts";
import { Succession, type SuccessionEvent } from "./succession.ts";
import { Rebalancer } from "./rebalance.ts";
import { CountAsks } from "./count_asks.ts";
import type { RecordedProcess } from "../control/worker_records.ts";
import type { Predecessor } from "./takeover.ts";
import { type Dashboard, relayedDashboard } from "../dashboard/dashboard.ts";

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
  | SuccessionEvent;

/** How long a stop waits for the watcher, the control socket and the metrics port to close. */
const CLOSE_DEADLINE_MS = 2000;

export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #world: World;
  readonly #events: EventQueue<SupervisorEvent>;
  readonly #workers: WorkerPool;
  readonly #processes: ProcessSet;
  readonly #reloads: Reloads;
  readonly #rebalance: Rebalancer | undefined;
  readonly #succession: Succession;
  readonly #ports: Ports;
  readonly #report: Report;
  #phase: "starting" | "running" | "stopping" | "stopped" = "starting";
  #processesStopping = false;
  readonly #startedAt: number;
  #exitCode = 0;
  #connection?: Connection;
  readonly #memoryLimit: MemoryLimit;
  readonly #metrics = new Metrics();
  /** `status` requests waiting for the workers' counts of requests. */
  readonly #countAsks = new CountAsks();
  /** The web dashboard, served where --metrics is. */
  readonly #dashboard?: Dashboard;

  /** `world` is the operating system; unit tests pass a fake one. */
  constructor(options: SupervisorOptions, world: World = realWorld(options)) {
    this.#options = options;
    this.#world = world;
    this.#events = new EventQueue(world.clock);
    const startedAt = this.#startedAt = world.clock.now();
    const listener = {
      message: (child: Child, message: ChildMessage) =>
        this.#events.push({ kind: "message", child, message }),
      exit: (child: Child, status: Deno.CommandStatus) =>
        this.#events.push({ kind: "exit", child, status }),
    };
    const seam = { listener, spawn: world.spawn, clock: world.clock, counters: this.#metrics };
    const connection = () => this.#connection;
    const steering = new Steering(() => this.#connection?.handover);
    const workers = this.#workers = new WorkerPool({
      ...options,
      ...seam,
      // Called before any worker drains: it leaves the steered set first.
      steer: (serving) => steering.tell(serving),
      release: (leaving, held) => this.#ports.release(leaving, held),
      // Before a takeover's switch, a failed worker ends the takeover instead.
      restarts: () => this.#succession.restarts(),
      rollingOutWorkers: () => this.#reloads.rollingOutWorkers,
    });
    const processes = this.#processes = new ProcessSet({ ...options, ...seam });
    this.#memoryLimit = new MemoryLimit(options, world, workers);
    const ports = this.#ports = new Ports({
      port: options.port,
      world,
      handover: () => this.#connection?.handover,
      workers: () => workers.children(),
      steer: () => workers.steer(),
    });
    if (options.metrics) {
      this.#dashboard = relayedDashboard({
        status: () => this.#report.status(this.#ports.bound()),
        hostname: options.metrics.hostname,
      });
    }
    const report = this.#report = new Report({
      dashboard: this.#dashboard,
      options,
      world,
      metrics: this.#metrics,
      workers,
      processes,
      connection,
      startedAt,
      state: () => ({
        phase: this.#phase,
        generation: this.#reloads.generation,
        reloading: this.#reloads.reloading,
        lastReload: this.#reloads.lastReload,
        succeeded: this.#succession.succeeded,
        tookOver: this.#succession.tookOver,
      }),
    });
    this.#reloads = new Reloads({
      options: { ...options, watching: options.watch !== undefined },
      clock: world.clock,
      isoTime: () => world.isoTime(),
      workers,
      processes,
      connection,
      report,
      stopping: () => this.#phase === "stopping" || this.#phase === "stopped",
      followUp: (request) => this.#events.push({ kind: "reload", request }),
    });
    // Keep-alive clients are spread by letting some reconnect (rebalance.ts); not with --sticky,
    // where a client reconnects to the worker it left.
    this.#rebalance = options.rebalance && !options.sticky
      ? new Rebalancer({
        serving: () =>
          this.#phase === "running" && this.#reloads.workersSettled && !this.#succession.takingOver
            ? workers.serving()
            : undefined,
        connections: (pids) => {
          const started = cpuTimeMs();
          const held = world.connections?.(pids, ports.bound()) ?? new Map();
          return { held, cpuMs: cpuTimeMs() - started };
        },
      })
      : undefined;
    this.#succession = new Succession({
      options,
      world,
      workers,
      steering,
      ports,
      report,
      connection,
      startedAt,
      phase: () => this.#phase,
      push: (event) => this.#events.push(event),
      stop: (code) => {
        this.#exitCode = code;
        this.#beginStop(false);
      },
    });
  }

  /** Runs until stopped; resolves with the process exit code. */
  async run(): Promise<number> {
    this.#connection = await this.#world.connect({
      signal: (signal) => this.#events.push({ kind: "signal", signal }),
      changes: (batch) => this.#events.push({ kind: "changes", batch }),
      control: (request, reply) => this.#events.push({ kind: "control", request, reply }),
      metrics: () => this.#metrics.render(scrapedFamilies(this.#report.metrics())),
      dashboard: this.#dashboard && ((conn, head) => this.#dashboard!.server.handle(conn, head)),
    });
    this.#succession.begin();
    this.#report.announceStart();
    try {
      while (true) {
        // One clock reading per pass: what reconcile decided not to do yet and
        // when to wake up for it must agree, or a retry due in between is lost.
        const now = this.#world.clock.now();
        this.#reconcile(now);
        this.#report.feedWatchdog(now);
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
        return this.#reloads.request(event.request);
      case "predecessor-gone":
        return this.#succession.onPredecessorGone(event.end);
      case "successor-exited":
        return this.#succession.onSuccessorExited(event.pid, event.status);
    }
  }

  #onChildMessage(child: Child, message: ChildMessage): void {
    if (child.spec.role === "process") {
      if (message.t === "ready") this.#processes.onReady(child);
      if (message.t === "restart-requested") this.#processes.onRestartRequested(child);
      return;
    }
    if (message.t === "listening") {
      const foreign = this.#ports.onListening(child, message.port, message.releasable);
      if (foreign) this.#fail();
    }
    if (message.t === "ready") this.#onWorkerReady(child, message.port);
    if (message.t === "bind-error") {
      const stopping = this.#phase === "stopping";
      // Nothing has ever served: this is bad input, not a crash to retry forever.
      if (this.#ports.onBindError(child, message.port, message.message, this.#workers, stopping)) {
        this.#fail();
      }
    }
    if (message.t === "requests") {
      child.requestsServed = message.served;
      if (message.asked) this.#countAsks.answered(child);
    }
    if (message.t === "draining") {
      child.openRequests = message.open;
      child.relaying = message.relaying;
      child.accepting = message.accepting;
    }
    if (message.t === "recycle") this.#workers.markForRecycle(child, message.reason);
  }

  #onWorkerReady(child: Child, port: number | undefined): void {
    if (child.state !== "starting") return;
    child.port = port ?? this.#options.port;
    this.#workers.onReady(child);
    this.#ports.checkMainPort(child);
    this.#reloads.onWorkerReady();
    if (this.#phase === "starting" && this.#workers.allReady()) {
      this.#phase = "running";
      const ms = Math.round(this.#world.clock.now() - this.#startedAt);
      log.info("supervisor.ready", `${this.#workers.desired} worker(s) ready in ${ms} ms`, {
        role: "supervisor",
      });
      void this.#connection?.graphs?.refresh();
      this.#succession.onAllReady();
    }
  }

  #onChildExit(child: Child, status: Deno.CommandStatus): void {
    if (child.spec.role === "process") return this.#processes.onExit(child, status);
    this.#countAsks.answered(child);
    this.#connection?.handover.gone(child.pid);
    const outcome = this.#workers.onExit(child, status, this.#reloads.generation);
    // Before a takeover's switch, new code that fails ends the takeover.
    if (this.#succession.onWorkerExit(child, outcome)) return;
    // New code failing during its reload is the rollout's to judge (it may abort).
    if (this.#reloads.onWorkerExit(child, outcome)) return;
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
      return this.#fail();
    }
    // Unwatched, the give-up above speaks for a start that never works.
    if (this.#options.watch) this.#reloads.waitForChange(child.spec.generation, outcome.summary);
  }

  #onSignal(signal: Deno.Signal): void {
    switch (signal) {
      case "SIGHUP":
      case "SIGUSR2": // the custom processes only
        return this.#reloads.request({
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
        return this.#reloads.request({
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
        // It counts every request answered before it was asked: the workers tell theirs first.
        return this.#countAsks.ask(
          this.#workers.children(),
          this.#world.clock.now(),
          () => reply({ ok: true, status: this.#report.status(this.#ports.bound()) }),
        );
      case "upgrade":
        return this.#succession.startUpgrade(request.args, reply);
      case "scale":
        if (this.#phase === "stopping") {
          return reply({ ok: false, error: "the instance is stopping", kind: "failure" });
        }
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
    this.#workers.scaleTo(workers);
  }

  #noSuchProcess(name: string): ControlReply {
    const names = this.#processes.names();
    const known = names.length > 0 ? `; processes: ${names.join(", ")}` : "; none is configured";
    return { ok: false, error: `no running process named "${name}"${known}`, kind: "not-running" };
  }

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
    this.#reloads.request({
      reason: "change",
      files,
      why: scope?.why,
      workers: everything || scope.workers,
      processes: everything || scope.processes.length > 0,
      processNames: everything ? undefined : scope.processes,
    });
  }

  // ---- Reconciliation --------------------------------------------------------------

  #reconcile(now: number): void {
    this.#succession.recordWorkers();
    this.#workers.enforceDeadlines(now);
    this.#processes.enforceDeadlines(now);
    this.#countAsks.advance(now);
    if (this.#phase === "stopping") return this.#continueStopping();
    this.#memoryLimit.sample(now);
    const generation = this.#reloads.generation;
    this.#workers.fill(now, generation);
    // Taking over: two queue consumers must not run side by side; ours start once the old ones are gone.
    if (!this.#succession.takingOver) this.#processes.fill(now, generation);
    this.#workers.replaceRecycled(now, generation);
    this.#succession.advance(now);
    this.#reloads.advance(now);
    this.#workers.topUpSpares(now);
    this.#rebalance?.advance(now);
    this.#processes.advanceRestarts();
    // Workers started just now are recorded before they can serve.
    this.#succession.recordWorkers();
  }

  #msUntilNextDeadline(now: number): number {
    const next = Math.min(
      this.#workers.nextDeadline(now),
      this.#processes.nextDeadline(now),
      this.#reloads.nextDeadline(now),
      this.#rebalance?.nextDeadline() ?? Infinity,
      this.#countAsks.nextDeadline(),
      this.#succession.nextDeadline(),
      this.#memoryLimit.nextDeadline(),
      this.#report.nextWatchdog(),
    );
    return Math.max(0, next - now);
  }

  // ---- Stopping ----------------------------------------------------------------------

  /** Something that cannot go on (bad input, a takeover that failed): exit 1, now. */
  #fail(): void {
    this.#exitCode = 1;
    this.#beginStop(true);
  }

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
      this.#succession.onStopping(successor);
      this.#report.notify("STOPPING=1", "STATUS=stopping");
    }
    this.#phase = "stopping";
    this.#reloads.cancel();
    this.#rebalance?.stop();
    if (fast) {
      this.#workers.killAll();
      this.#processes.killAll();
      this.#processesStopping = true;
    } else {
      // Taken over, the successor's workers take our clients: they get the whole close window.
      this.#workers.drainAll(successor === undefined);
    }
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
    this.#countAsks.advance(Infinity);
    // Its pages' streams hold connections open: they end first.
    this.#dashboard?.close();
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
}
