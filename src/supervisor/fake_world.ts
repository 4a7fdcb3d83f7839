/**
 * The supervisor's world, faked for unit tests: a clock that moves only when
 * the test advances it, a handover that records what it is told, an inbox
 * the test pushes into, and children that are real ManagedChilds on a fake
 * OS (child/fake_os.ts): the test makes them ready, crash or exit. No process
 * is started, nothing reads /proc.
 */
import type { ChildListener, ChildSpec } from "../child/child.ts";
import { ManagedChild } from "../child/child.ts";
import { FakeOs, type FakeProcess } from "../child/fake_os.ts";
import type { ControlReply, ControlRequest } from "../control/protocol.ts";
import type { Handover } from "../handover/mod.ts";
import { type ChildMessage, COUNT_SIGNAL } from "../runtime/protocol.ts";
import type { Clock } from "./clock.ts";
import type { SupervisorOptions } from "./supervisor.ts";
import type { PredecessorEnd } from "./takeover.ts";
import type { Connection, Inbox, World } from "./world.ts";

export class FakeClock implements Clock {
  #now = 0;
  #timers: Array<{ at: number; fn: () => void; id: number }> = [];
  #ids = 0;

  now(): number {
    return this.#now;
  }

  setTimer(fn: () => void, ms: number): () => void {
    const id = ++this.#ids;
    this.#timers.push({ at: this.#now + ms, fn, id });
    return () => this.#timers = this.#timers.filter((timer) => timer.id !== id);
  }

  /** Moves time forward by `ms`, firing each timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    while (true) {
      const due = this.#timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at);
      if (due.length === 0) break;
      this.#timers = this.#timers.filter((timer) => timer !== due[0]);
      this.#now = due[0].at;
      due[0].fn();
      await settle();
    }
    this.#now = target;
    await settle();
  }
}

/** Lets the supervisor's loop, and the children's pipes, run until they wait again. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

/** A child as the test drives it: the real ManagedChild, and the fake process under it. */
export class FakeChild {
  constructor(readonly child: ManagedChild, readonly process: FakeProcess) {}

  get pid(): number {
    return this.child.pid;
  }
  get spec(): ChildSpec {
    return this.child.spec;
  }
  get generation(): number {
    return this.child.spec.generation;
  }
  get state() {
    return this.child.state;
  }
  get spare(): boolean {
    return this.child.spare;
  }
  get killedAt(): number | undefined {
    return this.child.killedAt;
  }

  /** The app says it listens (a worker), or has started (a custom process). */
  ready(): void {
    if (this.spec.role === "process") return this.frame({ t: "ready", via: "app" });
    this.listen();
    this.frame({ t: "ready", via: "listen", port: 8000 });
  }

  /** A worker's server listens, its entry still running (not ready yet). */
  listen(): void {
    this.frame({ t: "listening", port: 8000, releasable: true });
  }

  /** The child sends a frame, as its preload would. */
  frame(message: ChildMessage): void {
    this.process.frame(message);
  }

  /** The process ends with `code` (or by `signal`). */
  exit(code: number | null, signal: Deno.Signal | null = null): void {
    this.process.exit(code, signal);
  }
}

export class FakeWorld implements World {
  readonly clock = new FakeClock();
  readonly os = new FakeOs();
  readonly children: FakeChild[] = [];
  inbox!: Inbox;
  /** A well-behaved app finishes at once when told to drain, unless the test says otherwise. */
  drainsAtOnce = true;
  /** A worker answers `status`'s ask for its count at once, as its preload would, unless set false. */
  countsAnswer = true;
  /** What each worker has served (by pid): what it answers when asked for its count. */
  readonly served = new Map<number, number>();
  /** Each worker's established connections, where a test gives them (World.connections). */
  connections?: World["connections"];
  readonly spawn = (spec: ChildSpec, listener: ChildListener): ManagedChild => {
    const child = ManagedChild.spawn(spec, listener, () => this.clock.now(), this.os);
    this.children.push(new FakeChild(child, this.os.processes.at(-1)!));
    return child;
  };
  usage = () => ({ rssBytes: 40 * 2 ** 20, cpuPercent: 1, cpuSeconds: 1 });
  /** A process that is not ours listening on every port other than --port (none unless set). */
  foreign?: { pid: number; command?: string };
  foreignListener = () => this.foreign;
  rssBytes = () => 50 * 2 ** 20;
  isoTime = () => new Date(this.clock.now()).toISOString();

  /** The handover the world offers (steered unless a test says otherwise). */
  handoverMode: Handover["mode"] = "ebpf";
  /** The pids the handover steers new connections to, as last told. */
  steered: number[] = [];
  /** Workers told to drain while still steered (must stay empty). */
  readonly drainedWhileSteered: number[] = [];
  /** Listeners released and workers told to drain, in order. */
  readonly journal: string[] = [];

  /** What systemd was told, line by line (set `notifier` to a fake: see {@link notifyToSystemd}). */
  readonly notified: string[] = [];
  notifier?: World["notifier"];

  /** Plays systemd: a notify socket that records every line (and asks for WATCHDOG=1 every `watchdogMs`). */
  notifyToSystemd(watchdogMs?: number): void {
    this.notifier = {
      watchdogMs,
      send: (...lines: string[]) => {
        this.notified.push(...lines);
        return true;
      },
      monotonicUsec: () => BigInt(Math.round(this.clock.now() * 1000)),
      close() {},
    };
  }

  /** run --takeover: what the fake predecessor was asked, and how to let it exit. */
  takeover?: { stopAsked: number; claimed: number; exited: (end: PredecessorEnd) => void };

  constructor() {
    this.os.onSignal = (process, signal) => {
      const child = this.children.find((c) => c.process === process);
      if (signal === "SIGKILL") return queueMicrotask(() => process.exit(null, "SIGKILL"));
      if (signal === COUNT_SIGNAL) {
        if (!this.countsAnswer) return;
        const served = this.served.get(process.pid) ?? 0;
        return queueMicrotask(() => process.frame({ t: "requests", served, asked: true }));
      }
      if (signal !== "SIGTERM" && signal !== "SIGINT") return;
      if (child?.spec.role === "worker") {
        this.journal.push(`${signal === "SIGINT" ? "last drain" : "drain"} ${process.pid}`);
        if (this.steered.includes(process.pid)) this.drainedWhileSteered.push(process.pid);
      }
      if (this.drainsAtOnce) queueMicrotask(() => process.exit(0));
    };
  }

  /** What `connect` returned (a test may change it, as the world would). */
  connection?: Connection;
  /** Records the live workers (set it to see what a successor would find). */
  recordWorkers?: World["recordWorkers"];
  orphans?: World["orphans"];
  spawnSuccessor?: World["spawnSuccessor"];

  connect(inbox: Inbox): Promise<Connection> {
    this.inbox = inbox;
    const handover: Handover = {
      mode: this.handoverMode,
      summary: `${this.handoverMode} (fake)`,
      steer: (workers) => this.steered = workers.map((worker) => worker.pid),
      listening() {},
      release: (pid, ports) => void this.journal.push(`release ${pid} ${ports}`),
      gone() {},
      close() {},
    };
    const takeover = this.takeover;
    return Promise.resolve(
      this.connection = {
        handover,
        takeover: takeover && {
          predecessor: {
            name: "test",
            pid: 42,
            startTime: 1,
            cwd: "/nonexistent",
            entry: "main.ts",
            workers: 1,
            graceMs: 5000,
            startedAt: "2026-01-01T00:00:00.000Z",
            version: "0.0.9",
          },
          stopPredecessor: () => {
            takeover.stopAsked++;
            return new Promise<PredecessorEnd>((resolve) => takeover.exited = resolve);
          },
          claim: () => {
            takeover.claimed++;
            return 0;
          },
        },
        close: () => Promise.resolve(),
      },
    );
  }

  /** Live workers of `generation`, by slot id. */
  workers(generation?: number): FakeChild[] {
    return this.children.filter((c) =>
      c.spec.role === "worker" && c.state !== "exited" &&
      (generation === undefined || c.generation === generation)
    );
  }

  /** Sends a control request; the box holds its reply once there is one. */
  ask(request: ControlRequest): { reply?: ControlReply } {
    const box: { reply?: ControlReply } = {};
    this.inbox.control(request, (reply) => box.reply = reply);
    return box;
  }
}

/** Run settings for a supervisor in a fake world: 2 workers on port 8000, watching. */
export function fakeOptions(extra: Partial<SupervisorOptions> = {}): SupervisorOptions {
  return {
    name: "test",
    instanceDir: "/nonexistent",
    cwd: "/nonexistent",
    runtimeBase: "file:///nonexistent/",
    deno: "deno",
    entry: "main.ts",
    denoFlags: [],
    appArgs: [],
    workers: 2,
    port: 8000,
    closeWindow: 0,
    hopKey: "0123456789abcdef0123456789abcdef",
    maxRequestsJitter: 0,
    grace: 5000,
    readyTimeout: 10_000,
    settle: 0,
    timeout: 0,
    spares: 0,
    oneStepSwitch: false,
    handover: "auto",
    workerDirs: [],
    sticky: false,
    rebalance: true,
    orphanGrace: 1000,
    reloadBatch: 1,
    processes: [],
    memoryCheckInterval: 5000,
    logFormat: "pretty",
    takeover: false,
    detach: false,
    sparesFollow: false,
    help: false,
    watch: { root: "/nonexistent" },
    ...extra,
  };
}

/**
 * A one-step reload was asked for: its lead starts, says it listens, and the
 * other new workers start (rollout.ts, LEAD_START_MS).
 */
export async function startedAll(world: FakeWorld): Promise<void> {
  await settle();
  const [lead] = world.children.filter((c) =>
    c.state === "starting" && c.spec.role === "worker" && !c.spare
  );
  lead?.listen();
  await settle();
}
