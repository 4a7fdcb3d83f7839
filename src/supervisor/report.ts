/**
 * What the supervisor tells the outside: `status` (the StatusReport, shaped
 * in control/protocol.ts and documented in the README), the state a metrics
 * scrape shows (metrics.ts turns it into gauges), systemd's notify protocol
 * (sd_notify.ts; READY, STATUS, RELOADING, WATCHDOG) and the log lines whose
 * wording is shared: the start, a reload's summary and why an aborted one
 * left what serves. It reads the supervisor's state and decides nothing.
 */
import type { Child } from "../child/child.ts";
import type { StatusReport, StatusRow } from "../control/protocol.ts";
import type { RunConfig } from "../config/settings.ts";
import { droppedOutput, log } from "../log/mod.ts";
import { TCP_MIGRATE_REQ_HINT } from "./kernel.ts";
import type { Metrics, MetricsSnapshot } from "./metrics.ts";
import type { ReloadRequest } from "./reload_request.ts";
import type { ProcessSet } from "./process_set.ts";
import type { WorkerPool } from "./worker_pool.ts";
import type { Connection, World } from "./world.ts";
import type { Dashboard } from "../dashboard/dashboard.ts";

type Supervisor = StatusReport["supervisor"];

/** The loop's state, as the report shows it. */
export interface ReportState {
  phase: Supervisor["phase"];
  generation: number;
  reloading: boolean;
  lastReload?: Supervisor["lastReload"];
  succeeded?: Supervisor["succeeded"];
  tookOver?: Supervisor["tookOver"];
}

/** What the report reads. */
export interface ReportSeam {
  options: Pick<RunConfig, "name" | "entry" | "port" | "host" | "processes"> & {
    version?: string;
  };
  world: Pick<World, "clock" | "usage" | "rssBytes" | "notifier">;
  metrics: Metrics;
  workers: WorkerPool;
  processes: ProcessSet;
  connection(): Connection | undefined;
  /** Clock time the supervisor started. */
  startedAt: number;
  state(): ReportState;
  /** The web dashboard (`--metrics`), told of each reload's start and end. */
  dashboard?: Pick<Dashboard, "reloadStarted" | "reloadEnded">;
}

export class Report {
  /**
   * Taking over until the switch, or stopping because taken over: the other
   * supervisor speaks for the service (see {@link notify}).
   */
  silent = false;
  #nextWatchdogAt = 0;

  constructor(private readonly seam: ReportSeam) {}

  /** Everything `hotreload status` shows; the JSON shape is documented in the README. */
  status(boundPorts: number[]): StatusReport {
    const { options, world, workers, processes } = this.seam;
    const usage = (child: Child) => world.usage(child);
    const children: StatusRow[] = [...workers.statusRows(usage), ...processes.statusRows(usage)];
    const state = this.seam.state();
    const connection = this.seam.connection();
    return {
      supervisor: {
        name: options.name,
        pid: Deno.pid,
        uptimeMs: Math.round(world.clock.now() - this.seam.startedAt),
        phase: state.phase,
        entry: options.entry,
        port: options.port ?? null,
        boundPorts,
        host: options.host ?? null,
        workers: workers.desired,
        generation: state.generation,
        watcher: connection?.watcher?.backend ?? null,
        graphs: connection?.graphs?.describe() ?? null,
        succeeded: state.succeeded ?? null,
        tookOver: state.tookOver ?? null,
        handover: connection?.handover.mode ?? null,
        reloading: state.reloading,
        lastReload: state.lastReload ?? null,
        rssBytes: world.rssBytes(),
        droppedLines: droppedOutput(),
      },
      children,
    };
  }

  /** What a scrape shows of the supervisor's state (metrics.ts turns it into gauges). */
  metrics(): MetricsSnapshot {
    const { options, world, workers, processes } = this.seam;
    const rows = [
      ...workers.statusRows(() => undefined),
      ...processes.statusRows(() => undefined),
    ];
    const children = [...workers.children(), ...processes.children()];
    return {
      version: options.version ?? "dev",
      handover: this.seam.connection()?.handover.mode ?? "none",
      generation: this.seam.state().generation,
      desiredWorkers: workers.desired,
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
        usage: world.usage(child),
      })),
      droppedLines: droppedOutput(),
      supervisorRssBytes: world.rssBytes(),
    };
  }

  /**
   * Tells systemd (when it asked, through NOTIFY_SOCKET); does nothing
   * otherwise. Taking over, the old supervisor speaks for the service until
   * the switch, when MAINPID= makes systemd follow this one; from then the
   * old one, stopping, says nothing (no STOPPING=1). A takeover that fails
   * never said anything.
   */
  notify(...lines: string[]): void {
    if (this.silent) return;
    this.seam.world.notifier?.send(...lines);
  }

  /** READY=1 with the status line (and MAINPID= when this supervisor becomes the service's). */
  ready(mainPid = false): void {
    const lines = ["READY=1", `STATUS=${this.statusLine()}`];
    this.notify(...lines, ...mainPid ? [`MAINPID=${Deno.pid}`] : []);
  }

  /** `4 workers ready, generation 3`: systemd's STATUS= while running. */
  statusLine(): string {
    const ready = this.seam.workers.readyOf(0);
    const generation = this.seam.state().generation;
    return `${ready} worker${ready === 1 ? "" : "s"} ready, generation ${generation}`;
  }

  /**
   * WATCHDOG=1 at half of WATCHDOG_USEC, sent from the loop itself: a wedged
   * loop stops feeding it, and systemd restarts the service.
   */
  feedWatchdog(now: number): void {
    const every = this.seam.world.notifier?.watchdogMs;
    if (every === undefined || now < this.#nextWatchdogAt) return;
    this.#nextWatchdogAt = now + every;
    this.notify("WATCHDOG=1");
  }

  /** When the watchdog is next due, or Infinity. */
  nextWatchdog(): number {
    return this.seam.world.notifier?.watchdogMs === undefined ? Infinity : this.#nextWatchdogAt;
  }

  // ---- A reload's lines: the log, systemd, the counters ------------------------------------

  /** A request during a rollout: it joins the one follow-up. */
  reloadQueued(request: ReloadRequest): void {
    log.info(
      "reload.queued",
      `${causeOf(request)} during the reload; one more reload will follow${whyOf(request)}`,
      { role: "supervisor", files: request.files },
    );
  }

  /** A reload refused before anything started (a broken env file). */
  reloadRefused(error: string, request: ReloadRequest): void {
    this.seam.dashboard?.reloadEnded({
      generation: this.seam.state().generation,
      ok: false,
      message: error,
      reason: request.reason,
      files: request.files,
    });
    log.error("reload.aborted", `${error}\nthe running workers keep their environment`, {
      role: "supervisor",
    });
    this.seam.metrics.reloads.inc({ outcome: "aborted" });
  }

  /** A rollout to `generation` began. */
  reloadStarted(request: ReloadRequest, generation: number): void {
    this.seam.dashboard?.reloadStarted({
      generation,
      reason: request.reason,
      files: request.files,
    });
    this.notify(
      "RELOADING=1",
      `MONOTONIC_USEC=${this.seam.world.notifier?.monotonicUsec() ?? 0}`,
      `STATUS=reloading to generation ${generation}`,
    );
    const what = request.workers
      ? `${this.seam.workers.desired} worker(s)`
      : "the custom processes";
    log.info(
      "reload.start",
      `${causeOf(request)}: reloading ${what} to generation ${generation}${whyOf(request)}`,
      { role: "supervisor", generation, files: request.files },
    );
  }

  /** Another new worker is ready. */
  reloadProgress(generation: number): void {
    const { workers } = this.seam;
    this.notify(
      `STATUS=reloading ${
        workers.readyOf(generation)
      }/${workers.desired} (generation ${generation})`,
    );
  }

  /** A rollout is done. */
  reloadDone(rollout: EndedReload, summary: string): void {
    if (rollout.request.files.length > 0) {
      const ms = this.seam.world.clock.now() - rollout.startedAt;
      this.seam.metrics.changeToReady.observe(ms / 1000);
    }
    this.ready();
    this.seam.dashboard?.reloadEnded({
      generation: rollout.generation,
      ok: true,
      message: summary,
    });
    log.info("reload.done", summary, {
      role: "supervisor",
      generation: rollout.generation,
      files: rollout.request.files,
    });
  }

  /** A rollout was aborted: `text` says why and what serves now. */
  reloadAborted(generation: number, text: string): void {
    this.seam.dashboard?.reloadEnded({ generation, ok: false, message: text });
    this.notify(
      "READY=1",
      `STATUS=reload to generation ${generation} aborted; ${this.statusLine()}`,
    );
    log.error("reload.aborted", text, { role: "supervisor", generation });
  }

  /** Any rollout's end, counted. */
  reloadEnded(rollout: EndedReload, ok: boolean): void {
    const { metrics, world } = this.seam;
    metrics.reloads.inc({ outcome: ok ? "done" : "aborted" });
    metrics.reloadDuration.observe((world.clock.now() - rollout.startedAt) / 1000);
  }

  /** The start's log lines: what runs where, how files are watched, the handover. */
  announceStart(): void {
    const { port: wanted, host: bound, entry, processes } = this.seam.options;
    const port = wanted === undefined ? "the app's own port" : `port ${wanted}`;
    const host = bound === undefined ? "" : ` of ${bound}`;
    const connection = this.seam.connection()!;
    const watcher = connection.watcher;
    const watching = watcher
      ? `watching with ${watcher.backend === "poll" ? "polling" : "file events"}`
      : "not watching";
    if (watcher?.fallbackReason) {
      log.warn("watch.fallback", `watching by polling: ${watcher.fallbackReason}`, {
        role: "supervisor",
      });
    }
    for (const note of watcher?.notes ?? []) log.info("watch.named", note, { role: "supervisor" });
    const count = processes.reduce((n, p) => n + p.count, 0);
    const beside = count > 0 ? ` and ${count} custom process(es)` : "";
    log.info(
      "supervisor.start",
      `starting ${this.seam.workers.desired} worker(s) of ${entry} on ${port}${host}${beside}; ${watching} (pid ${Deno.pid})`,
      { role: "supervisor", pid: Deno.pid },
    );
    const { mode, summary } = connection.handover;
    // Without a handover, say how to get one.
    const say = mode === "none" ? log.warn : log.info;
    const hint = mode === "none" ? `. ${TCP_MIGRATE_REQ_HINT}` : "";
    say("supervisor.handover", `handover: ${summary}${hint}`, {
      role: "supervisor",
      handover: mode,
    });
  }
}

/** `3 files: src/a.ts, src/b.ts, src/c.ts` (at most 5 names); `verb` goes after "files". */
export function describeChanges(files: string[], verb = ""): string {
  const shown = files.slice(0, 5).join(", ");
  const more = files.length > 5 ? `, and ${files.length - 5} more` : "";
  const noun = files.length === 1 ? "file" : "files";
  return `${files.length} ${noun}${verb ? ` ${verb}` : ""}: ${shown}${more}`;
}

/** A reload as its end is reported. */
export interface EndedReload {
  generation: number;
  startedAt: number;
  request: { files: string[] };
}

/** What set a reload off: `2 files changed: a.ts, b.ts`, or its reason (`SIGHUP`). */
function causeOf(request: ReloadRequest): string {
  return request.files.length > 0 ? describeChanges(request.files, "changed") : request.reason;
}

/** Why these children (reload_scope.ts), after what happens. */
function whyOf(request: ReloadRequest): string {
  return request.why ? `; ${request.why}` : "";
}

/** What a reload's summary is made of. */
export interface ReloadFacts {
  generation: number;
  request: { reason: string; files: string[]; workers: boolean; processes: boolean };
  /** Workers were serving as it began: it replaced them (else it started them). */
  replacing: boolean;
  /** A newer change took over from it before all its workers were ready. */
  superseded: boolean;
  /** Milliseconds it took. */
  ms: number;
}

/**
 * What happened, truthfully: `reloaded 4 workers in 312 ms (generation 7; 2
 * files: src/a.ts, src/b.ts)`; `generation 2 started 2 workers; all ready
 * in 140 ms (1 file: main.ts)` when nothing was serving before; and how
 * many are ready when some of the new workers failed, or were still
 * starting when a newer change superseded it.
 */
export function reloadSummary(
  { generation, request, replacing, superseded, ms }: ReloadFacts,
  workers: number,
  ready: number,
  processes: number,
): string {
  const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
  const { files, reason } = request;
  const cause = files.length > 0 ? describeChanges(files) : reason;
  const extra = request.processes && processes > 0
    ? ` and ${processes} process${processes === 1 ? "" : "es"}`
    : "";
  if (!request.workers) {
    return `reloaded ${
      extra ? extra.slice(5) : "nothing"
    } in ${ms} ms (generation ${generation}; ${cause})`;
  }
  if (ready < workers && superseded) {
    // Nothing failed: the rest were still starting when a newer change arrived, which replaces them.
    return `generation ${generation}: ${ready} of ${plural(workers, "worker")} ready in ` +
      `${ms} ms, when a newer change took over from it${
        extra ? `;${extra} reloaded` : ""
      } (${cause})`;
  }
  if (ready < workers) {
    return `generation ${generation}: ${ready} of ${plural(workers, "worker")} ready in ` +
      `${ms} ms, the others failed and are retried${extra ? `;${extra} reloaded` : ""} (${cause})`;
  }
  if (!replacing) {
    return `generation ${generation} started ${plural(workers, "worker")}${extra}; all ` +
      `ready in ${ms} ms (${cause})`;
  }
  return `reloaded ${
    plural(workers, "worker")
  }${extra} in ${ms} ms (generation ${generation}; ${cause})`;
}

/** After an aborted reload: what serves now, and what brings the new code. */
export function afterAbort(
  { putBack, switched, serving, watching, generation, summary }: {
    putBack: boolean;
    switched: boolean;
    serving: boolean;
    watching: boolean;
    generation: number;
    summary: string;
  },
): string {
  return putBack
    ? "the old workers, held until the new ones settled, serve again; the next change or reload tries again"
    : switched && serving
    ? `the old workers had drained already (no steering to put them back, see "Broken code" ` +
      `in the README); the new workers still up keep serving`
    : serving
    ? "the old workers keep serving; the next change or reload tries again"
    : watching
    ? `nothing serves: waiting for a change (generation ${generation} failed: ${summary})`
    : `nothing serves: fix it, then "hotreload reload" (generation ${generation} failed: ${summary})`;
}
