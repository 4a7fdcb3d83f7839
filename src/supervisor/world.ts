/**
 * The one seam between the supervisor's core and the operating system:
 * spawning children, the clock, signals, the file watcher, the control
 * socket, the handover (src/handover/: who takes new connections), and what
 * the core reads of the OS: children's memory and CPU, who else listens on a
 * port, its own memory, the wall-clock time.
 * `realWorld` wires the real ones; the core's unit tests (supervisor_test.ts)
 * pass a fake child, a fake clock, a fake handover and an inbox they push
 * into, and start no process.
 */
import { type Child, ManagedChild, type Spawn } from "../child/child.ts";
import { type ChildUsage, UsageSampler } from "./sampler.ts";
import { establishedConnections, foreignListener, type PortHolder } from "./port_owners.ts";
import type { ControlReply, ControlRequest } from "../control/protocol.ts";
import { ControlServer, socketPath } from "../control/socket.ts";
import { UsageError } from "../errors.ts";
import { type ExtraRoutes, serveMetrics } from "./metrics_server.ts";
import { SdNotify } from "./sd_notify.ts";
import type { Change, ChangeBatch, Watcher, WatchOptions } from "../watch/mod.ts";
import { type Clock, REAL_CLOCK } from "./clock.ts";
import { readTcpMigrateReq } from "./kernel.ts";
import { type Handover, openHandover } from "../handover/mod.ts";
import { ModuleGraphs } from "./module_graph.ts";
import { orphansOf } from "../control/instance_dir.ts";
import {
  type RecordedProcess,
  recordedWorkers,
  removeTakeoverRecord,
  writeTakeoverRecord,
  writeWorkers,
} from "../control/worker_records.ts";
import {
  type Predecessor,
  type PredecessorEnd,
  spawnSuccessor,
  stopPredecessor,
  type Successor,
  takeoverSocketPath,
} from "./takeover.ts";
import { processStartTime } from "../child/os.ts";
import { log } from "../log/mod.ts";
import type { RunConfig } from "../config/settings.ts";

/** What the outside world tells the supervisor. */
export interface Inbox {
  signal(signal: Deno.Signal): void;
  changes(batch: ChangeBatch): void;
  control(request: ControlRequest, reply: (reply: ControlReply) => void): void;
  /** The Prometheus exposition text, for a scrape of `--metrics`. */
  metrics(): string;
  /** The `--metrics` port's other paths: the web dashboard (src/dashboard/). */
  dashboard?: ExtraRoutes;
}

/** systemd's notify socket, when the service manager gave one: SdNotify's public side. */
export type Notifier = Pick<SdNotify, keyof SdNotify>;

/** What connecting to the world found out, and how to let go of it. */
export interface Connection {
  /** How files are watched; undefined when not watching. */
  watcher?: { backend: "events" | "poll"; fallbackReason?: string; notes?: string[] };
  /** Who takes new connections while a worker drains (src/handover/). */
  handover: Handover;
  /** Which child runs which files (module_graph.ts); undefined when not watching. */
  graphs?: Pick<
    ModuleGraphs,
    "refresh" | "refreshSoon" | "invalidate" | "scope" | "describe" | "stop"
  >;
  /** A takeover under way (run --takeover): the instance it replaces, and the steps to end it. */
  takeover?: {
    predecessor: Predecessor;
    /** Stops the predecessor gracefully; resolves once it has exited (takeover.ts). */
    stopPredecessor(): Promise<PredecessorEnd>;
    /**
     * Takes the name: the lock, the record and the usual control socket.
     * Drains the workers a predecessor that died during the takeover left
     * serving (orphans; `release` first, as drain's); returns how many.
     * Throws if the name cannot be taken.
     */
    claim(release: (pid: number) => void): number;
  };
  close(): Promise<void>;
}

/** Everything outside the core. */
export interface World {
  clock: Clock;
  spawn: Spawn;
  /** Memory and CPU of a live child, from /proc (sampler.ts); undefined once it is gone. */
  usage(child: Child): ChildUsage | undefined;
  /** A process that is not ours listening on `port` (port_owners.ts: /proc/net), if any. */
  foreignListener(
    port: number,
    isOurs: (pid: number, pgid: number) => boolean,
  ): PortHolder | undefined;
  /** The supervisor's own resident memory, in bytes. */
  rssBytes(): number;
  /** The wall-clock time as status shows it (ISO 8601). */
  isoTime(): string;
  /**
   * Opens the handover, then starts the watcher, signal handlers and control
   * socket, all pushing into `inbox`.
   */
  connect(inbox: Inbox): Promise<Connection>;
  /** systemd's notify socket, or undefined (no systemd, or not Type=notify). */
  notifier?: Notifier;
  /** Records the live workers' pids, so that a successor finds them if this supervisor dies. */
  recordWorkers?(pids: number[]): void;
  /** Workers a supervisor that died left serving here (orphans), for this one to drain. */
  orphans?: Orphans;
  /** Starts `run --takeover` of this instance (hotreload upgrade); throws when it cannot. */
  spawnSuccessor?(runArgs: string[] | undefined): Successor;
  /** Pids of the workers of the supervisor this one replaces (orphans, or a takeover's): not foreign. */
  formerWorkers?(): number[];
  /** Each of `pids`' established connections on `ports`, by socket inode (port_owners.ts). */
  connections?(pids: number[], ports: number[]): Map<number, string[]>;
}

/** A dead predecessor's workers, still serving (--orphan-grace). */
export interface Orphans {
  supervisor: number;
  /** The dead supervisor's hotreload version, when its record says. */
  version?: string;
  count: number;
  /**
   * Asks each to drain (SIGTERM), once it is verified to be the process
   * recorded, each `release`d first (its listeners stopped: see
   * handover/release.ts); how many.
   */
  drain(release: (pid: number) => void): number;
}

/** Signals the supervisor handles (never SIGUSR1: it opens Deno's inspector). */
export const HANDLED_SIGNALS: Deno.Signal[] = [
  "SIGTERM",
  "SIGINT",
  "SIGQUIT",
  "SIGHUP",
  "SIGUSR2",
  "SIGTTIN",
  "SIGTTOU",
];

/** What the real world is made from: the run's settings, and where and how it runs. */
type RealWorldOptions =
  & Pick<RunConfig, "metrics" | "handover" | "sticky" | "entry" | "cwd" | "denoFlags">
  & Pick<RunConfig, "processes" | "workerDirs">
  & {
    deno: string;
    instanceDir: string;
    watch?: Omit<WatchOptions, "onBatch">;
    orphans?: { supervisor: number; version?: string; workers: RecordedProcess[] };
    /** run --takeover: the instance replaced, and how to claim its name once it is gone. */
    takingOver?: { predecessor: Predecessor; claim(): void };
    /** The instance's hop secret and hotreload's version, for a takeover's record. */
    hopKey?: string;
    version?: string;
  };

/**
 * The live workers' record, for a successor: workers.json, or, taking over
 * until the name is ours, this supervisor's takeover-<pid>.json.
 */
class WorkersRecord {
  readonly #startTimes = new Map<number, number>();
  /** Taking over, until the name is ours: our workers are recorded apart. */
  apart: boolean;

  constructor(private readonly options: RealWorldOptions) {
    this.apart = options.takingOver !== undefined;
  }

  write(pids: number[]): void {
    const startTimes = this.#startTimes;
    for (const pid of startTimes.keys()) if (!pids.includes(pid)) startTimes.delete(pid);
    const workers = pids.flatMap((pid) => {
      const startTime = startTimes.get(pid) ?? processStartTime(pid);
      if (startTime === undefined) return [];
      startTimes.set(pid, startTime);
      return [{ pid, startTime }];
    });
    const { instanceDir, hopKey, version } = this.options;
    try {
      if (!this.apart) writeWorkers(instanceDir, workers);
      else {
        writeTakeoverRecord(instanceDir, {
          pid: Deno.pid,
          startTime: processStartTime(Deno.pid) ?? 0,
          hopKey,
          version,
          workers,
        });
      }
    } catch { /* a full disk must not stop the supervisor; succession is best effort */ }
  }
}

/** The real world: processes, signals, inotify or polling, a unix socket. */
export function realWorld(options: RealWorldOptions): World {
  const sampler = new UsageSampler();
  const record = new WorkersRecord(options);
  return {
    recordWorkers: (pids) => record.write(pids),
    orphans: options.orphans && {
      supervisor: options.orphans.supervisor,
      version: options.orphans.version,
      count: options.orphans.workers.length,
      drain: (release) => drainRecorded(options.orphans!.workers, release),
    },
    spawnSuccessor: (runArgs) => spawnSuccessor(options.cwd, runArgs),
    formerWorkers: () =>
      [
        ...(options.orphans?.workers ?? []),
        ...(options.takingOver
          ? recordedWorkers(options.instanceDir, options.takingOver.predecessor.hopKey)
          : []),
      ].map((worker) => worker.pid),
    clock: REAL_CLOCK,
    usage: (child) => sampler.sample(child),
    foreignListener,
    connections: establishedConnections,
    rssBytes: () => Deno.memoryUsage().rss,
    isoTime: () => new Date().toISOString(),
    notifier: SdNotify.fromEnv(),
    spawn: (spec, listener) => ManagedChild.spawn(spec, listener, REAL_CLOCK.now),
    connect: (inbox) => connect(options, inbox, record),
  };
}

/** The watcher, when watching (`handover` is closed if it cannot start). */
async function startWatcher(
  watch: Omit<WatchOptions, "onBatch"> | undefined,
  inbox: Inbox,
  handover: Handover,
): Promise<Watcher | undefined> {
  if (!watch) return undefined;
  // Loaded only when watching, so `--no-watch` production runs never pay for it.
  const { createWatcher } = await import("../watch/mod.ts");
  try {
    return await createWatcher({
      ...watch,
      onBatch: inbox.changes,
      onNote: (text) => log.warn("watch.note", text, { role: "supervisor" }),
    });
  } catch (error) {
    handover.close();
    // A missing --watch path, or watching that cannot work as asked: bad input.
    throw new UsageError((error as Error).message);
  }
}

/** Connects the real world: handover, watcher, signals, the control socket, the metrics port. */
async function connect(
  options: RealWorldOptions,
  inbox: Inbox,
  record: WorkersRecord,
): Promise<Connection> {
  // First: a forced handover that cannot work is a start-up error, before anything starts.
  const handover = openHandover(options.handover, readTcpMigrateReq(), options.sticky);
  const watcher = await startWatcher(options.watch, inbox, handover);
  const handlers = HANDLED_SIGNALS.map((signal) => {
    const handler = () => inbox.signal(signal);
    Deno.addSignalListener(signal, handler);
    return [signal, handler] as const;
  });
  const { takingOver: takeover, instanceDir } = options;
  // Taking over: the name's socket stays the old supervisor's until it is gone.
  let control = ControlServer.listen(
    takeover ? takeoverSocketPath(instanceDir) : socketPath(instanceDir),
    inbox.control,
  );
  const serve = () =>
    options.metrics && serveMetrics(options.metrics, inbox.metrics, inbox.dashboard);
  // Taking over: the old supervisor serves the metrics port until it is gone.
  let metrics = takeover ? undefined : serve();
  // A file decided again later (reload_scope.ts, wait-new) comes back as a change.
  const graphs = watcher &&
    moduleGraphs(options, (changes) => inbox.changes({ changes }), watcher.unseen);
  return {
    watcher: watcher && {
      backend: watcher.backend,
      fallbackReason: watcher.fallbackReason,
      notes: watcher.notes,
    },
    handover,
    graphs,
    takeover: takeover && {
      predecessor: takeover.predecessor,
      stopPredecessor: () => stopPredecessor(instanceDir, takeover.predecessor),
      claim(release) {
        // Read before the claim replaces the record: a predecessor killed meanwhile left these.
        const orphans = orphansOf(instanceDir);
        takeover.claim();
        record.apart = false;
        removeTakeoverRecord(instanceDir);
        control.close();
        control = ControlServer.listen(socketPath(instanceDir), inbox.control);
        metrics = serve();
        return orphans ? drainRecorded(orphans.workers, release) : 0;
      },
    },
    async close() {
      // A takeover that ends before it has the name leaves no record of it.
      if (record.apart) removeTakeoverRecord(instanceDir);
      handover.close();
      for (const [signal, handler] of handlers) Deno.removeSignalListener(signal, handler);
      control.close();
      metrics?.close();
      graphs?.stop();
      await watcher?.close();
    },
  };
}

/**
 * Asks each recorded worker of a supervisor that is gone to drain (SIGTERM);
 * how many were asked. Each pid is re-checked now: it is signalled only
 * while it is still the process recorded.
 */
function drainRecorded(workers: RecordedProcess[], release: (pid: number) => void): number {
  // All released before any is told: none asks its clients to reconnect onto another's
  // listener as that one stops.
  const live = workers.filter(({ pid, startTime }) => processStartTime(pid) === startTime);
  for (const { pid } of live) release(pid);
  return live.filter(({ pid, startTime }) => {
    if (processStartTime(pid) !== startTime) return false;
    try {
      Deno.kill(pid, "SIGTERM");
      return true;
    } catch {
      return false;
    }
  }).length;
}

/** The module graphs of the workers' and each custom process's entry. */
function moduleGraphs(
  options: Pick<RunConfig, "entry" | "cwd" | "denoFlags" | "processes" | "workerDirs"> & {
    deno: string;
  },
  recheck: (changes: Change[]) => void,
  unseen: (path: string) => string | undefined,
): ModuleGraphs {
  return new ModuleGraphs({
    deno: options.deno,
    cwd: options.cwd,
    entries: {
      workers: { entry: options.entry, denoFlags: options.denoFlags },
      processes: options.processes.map((process) => ({
        name: process.name,
        entry: process.entry,
        denoFlags: process.permissions ?? options.denoFlags,
        dirs: process.watch,
      })),
    },
    workerDirs: options.workerDirs,
    recheck,
    unseen,
    onUnseen: (process, files) => {
      const who = process === undefined ? "the workers run" : `the "${process}" process runs`;
      const shown = files.slice(0, 5).map(({ file, why }) => `${file} (${why})`).join(", ");
      const more = files.length > 5 ? ` and ${files.length - 5} more` : "";
      log.warn(
        "watch.unseen",
        `${who} ${files.length} module(s) whose edits are never seen, so they reload nothing: ` +
          `${shown}${more}; name their directories with --watch (or --worker-dir)`,
        { role: "supervisor", files: files.map(({ file }) => file) },
      );
    },
    onUnavailable: (why) =>
      log.warn(
        "watch.no-graph",
        `cannot tell which child imports which file (${why}): every change reloads everything`,
        { role: "supervisor" },
      ),
  });
}
