/**
 * The supervisor's core, driven without the operating system: a fake world
 * whose children are objects the test makes ready, crash or exit, and whose
 * clock moves only when the test advances it. No process is started.
 */
import assert from "node:assert/strict";
import type { Child, ChildListener, ChildSpec, ChildState } from "../child/child.ts";
import { LineTail } from "../child/tail.ts";
import type { ControlReply, ControlRequest, StatusReport } from "../control/protocol.ts";
import type { Clock } from "./clock.ts";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import type { Connection, Inbox, World } from "./world.ts";
import type { PredecessorEnd } from "./takeover.ts";
import type { Handover } from "../handover/mod.ts";

class FakeClock implements Clock {
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

/** Lets the supervisor's loop run until it waits again (it awaits nothing real). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 0));
}

let nextPid = 1000;

class FakeChild implements Child {
  readonly pid = nextPid++;
  startedAt: number;
  spare: boolean;
  state: ChildState = "starting";
  drainStartedAt?: number;
  readyAt?: number;
  killedAt?: number;
  requestsServed = 0;
  lastSeenAt: number;
  openRequests?: number;
  relaying = 0;
  drainedLast = false;
  released = false;
  accepting = true;
  port?: number;
  readonly ports = new Set<number>();
  readonly releasable = new Set<number>();
  readonly tail = new LineTail(15);

  constructor(
    public spec: ChildSpec,
    readonly listener: ChildListener,
    readonly world: FakeWorld,
  ) {
    this.startedAt = world.clock.now();
    this.lastSeenAt = this.startedAt;
    this.spare = spec.settings === undefined;
  }

  release(spec: ChildSpec): void {
    this.spec = spec;
    this.spare = false;
    this.startedAt = this.world.clock.now();
  }

  get generation(): number {
    return this.spec.generation;
  }

  uptimeMs(now = this.world.clock.now()): number {
    return now - this.startedAt;
  }

  markReady(): number {
    this.state = "ready";
    this.readyAt = this.world.clock.now();
    return this.readyAt - this.startedAt;
  }

  releaseOutput(): void {}

  hold(): void {}

  drain(last = false): void {
    if (this.state === "exited" || this.state === "draining") return;
    this.world.journal.push(`${last ? "last drain" : "drain"} ${this.pid}`);
    this.drainedLast = last;
    if (this.world.steered.includes(this.pid)) this.world.drainedWhileSteered.push(this.pid);
    this.state = "draining";
    this.drainStartedAt = this.world.clock.now();
    // A well-behaved app finishes at once unless the test says otherwise.
    if (this.world.drainsAtOnce) queueMicrotask(() => this.exit(0));
  }

  kill(): void {
    if (this.state === "exited") return;
    this.killedAt ??= this.world.clock.now();
    queueMicrotask(() => this.exit(null, "SIGKILL"));
  }

  send(): void {}

  /** The app says it listens. */
  ready(): void {
    this.lastSeenAt = this.world.clock.now();
    this.listener.message(this, { t: "listening", port: 8000, releasable: true });
    this.listener.message(this, { t: "ready", via: "listen", port: 8000 });
  }

  /** The process ends with `code` (or by `signal`). */
  exit(code: number | null, signal: Deno.Signal | null = null): void {
    if (this.state === "exited") return;
    this.state = "exited";
    this.listener.exit(this, { success: code === 0, code: code ?? 137, signal });
  }
}

class FakeWorld implements World {
  readonly clock = new FakeClock();
  readonly children: FakeChild[] = [];
  inbox!: Inbox;
  drainsAtOnce = true;
  readonly spawn = (spec: ChildSpec, listener: ChildListener): Child => {
    const child = new FakeChild(spec, listener, this);
    this.children.push(child);
    return child;
  };

  /** The pids the handover steers new connections to, as last told. */
  steered: number[] = [];
  /** Workers told to drain while still steered (must stay empty). */
  readonly drainedWhileSteered: number[] = [];
  /** Listeners released and workers told to drain, in order. */
  readonly journal: string[] = [];

  /** run --takeover: what the fake predecessor was asked, and how to let it exit. */
  takeover?: { stopAsked: number; claimed: number; exited: (end: PredecessorEnd) => void };

  connect(inbox: Inbox): Promise<Connection> {
    this.inbox = inbox;
    const handover: Handover = {
      mode: "ebpf",
      summary: "steered (fake)",
      steer: (workers) => this.steered = workers.map((worker) => worker.pid),
      listening() {},
      release: (pid, ports) => void this.journal.push(`release ${pid} ${ports}`),
      gone() {},
      close() {},
    };
    const takeover = this.takeover;
    return Promise.resolve({
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
    });
  }

  /** Live workers of `generation`, by slot id. */
  workers(generation?: number): FakeChild[] {
    return this.children.filter((c) =>
      c.spec.role === "worker" && c.state !== "exited" &&
      (generation === undefined || c.generation === generation)
    );
  }

  /** Sends a control request and returns a promise of its reply. */
  ask(request: ControlRequest): { reply?: ControlReply } {
    const box: { reply?: ControlReply } = {};
    this.inbox.control(request, (reply) => box.reply = reply);
    return box;
  }
}

function options(extra: Partial<SupervisorOptions> = {}): SupervisorOptions {
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
    orphanGrace: 1000,
    reloadBatch: 1,
    processes: [],
    memoryCheckInterval: 5000,
    logFormat: "pretty",
    takeover: false,
    help: false,
    watch: { root: "/nonexistent" },
    ...extra,
  };
}

/** Starts a supervisor in a fake world with `workers` workers, all ready. */
async function started(workers = 2, extra: Partial<SupervisorOptions> = {}) {
  const world = new FakeWorld();
  const supervisor = new Supervisor({ ...options(extra), workers }, world);
  const done = supervisor.run();
  await settle();
  assert.equal(world.workers(1).length, workers, "the first generation starts");
  for (const child of world.workers(1)) child.ready();
  await settle();
  return { world, done };
}

async function stop(world: FakeWorld, done: Promise<number>): Promise<number> {
  world.inbox.signal("SIGTERM");
  await settle();
  return await done;
}

Deno.test("core: a canary that becomes ready lets the reload through, one worker at a time", async () => {
  const { world, done } = await started(2);
  const asked = world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(2).length, 1, "only the canary starts first");
  assert.equal(world.workers(1).length, 2, "no old worker drains before it is ready");
  world.workers(2)[0].ready();
  await settle();
  const [replaced] = world.workers(1).filter((c) => !world.steered.includes(c.pid));
  assert.ok(replaced, "its predecessor left service");
  assert.equal(replaced.state, "ready", "held, its clients' requests sent on, until all are new");
  assert.equal(world.workers(2).length, 2, "then the next one started");
  world.workers(2)[1].ready();
  await settle();
  assert.deepEqual(world.workers(1), [], "then the replaced ones drained together");
  assert.equal(asked.reply?.ok, true);
  assert.match(
    (asked.reply as { message: string }).message,
    /reloaded 2 workers in \d+ ms \(generation 2; reload command\)/,
  );
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a canary that exits before it is ready aborts the reload; the old workers keep serving", async () => {
  const { world, done } = await started(2);
  const asked = world.ask({ cmd: "reload" });
  await settle();
  world.workers(2)[0].exit(1);
  await settle();
  assert.equal(asked.reply?.ok, false);
  assert.match(
    (asked.reply as { error: string }).error,
    /reload aborted: worker 0 of generation 2 exited/,
  );
  assert.equal(world.workers(1).length, 2);
  assert.ok(world.workers(1).every((c) => c.state === "ready"), "none of them drains");
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: the workers leaving at a switch are all released before any is told to drain; a stop is their last drain", async () => {
  const { world, done } = await started(3, { oneStepSwitch: true });
  world.ask({ cmd: "reload" });
  await settle();
  for (const child of world.workers(2)) child.ready();
  await settle();
  const old = world.children.filter((c) => c.spec.generation === 1).map((c) => c.pid);
  assert.deepEqual(world.journal, [
    ...old.map((pid) => `release ${pid} 8000`),
    ...old.map((pid) => `drain ${pid}`),
  ]);
  world.journal.length = 0;
  assert.equal(await stop(world, done), 0);
  const fresh = world.children.filter((c) => c.spec.generation === 2).map((c) => c.pid);
  assert.deepEqual(world.journal, [
    ...fresh.map((pid) => `release ${pid} 8000`),
    ...fresh.map((pid) => `last drain ${pid}`),
  ]);
});

Deno.test("core: after the canary, --reload-batch workers are replaced at once", async () => {
  const { world, done } = await started(5, { reloadBatch: 2 });
  world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(2).length, 1, "the canary alone");
  world.workers(2)[0].ready();
  await settle();
  assert.equal(world.workers(2).filter((c) => c.state === "starting").length, 2, "a batch of 2");
  for (const child of world.workers(2).filter((c) => c.state === "starting")) child.ready();
  await settle();
  assert.equal(world.workers(2).filter((c) => c.state === "starting").length, 2, "the next 2");
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: triggers during a reload coalesce into exactly one follow-up", async () => {
  const { world, done } = await started(1);
  const first = world.ask({ cmd: "reload" });
  await settle();
  const later = [world.ask({ cmd: "reload" }), world.ask({ cmd: "reload" })];
  world.inbox.signal("SIGHUP");
  await settle();
  world.workers(2)[0].ready();
  await settle();
  assert.equal(first.reply?.ok, true);
  assert.equal(later[0].reply, undefined, "the follow-up has not run yet");
  assert.equal(world.workers(3).length, 1, "one follow-up, generation 3");
  world.workers(3)[0].ready();
  await settle();
  for (const asked of later) assert.equal((asked.reply as { generation: number }).generation, 3);
  assert.equal(world.children.filter((c) => c.generation === 4).length, 0, "and no more");
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: an old worker that crashes during a reload comes back with the new code", async () => {
  const { world, done } = await started(2);
  const asked = world.ask({ cmd: "reload" });
  await settle();
  const canary = world.workers(2)[0];
  const other = world.workers(1).find((c) => c.spec.id !== canary.spec.id)!;
  other.exit(1);
  await settle();
  // New code is never held back by a backoff that an old crash started.
  const restarted = world.workers(2).find((c) => c.spec.id === other.spec.id);
  assert.ok(restarted, "the crashed slot starts generation 2 at once");
  canary.ready();
  restarted.ready();
  await settle();
  assert.equal(asked.reply?.ok, true);
  assert.deepEqual(world.workers(1), []);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a recycle asked for during a reload starts no second replacement", async () => {
  const { world, done } = await started(1);
  world.ask({ cmd: "reload" });
  await settle();
  const old = world.workers(1)[0];
  old.listener.message(old, { t: "recycle", reason: "served 10 requests (--max-requests)" });
  await settle();
  assert.equal(world.workers(2).length, 1, "one replacement for the slot");
  assert.equal(world.children.length, 2);
  world.workers(2)[0].ready();
  await settle();
  assert.equal(world.workers().length, 1);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: scale during a reload: the new slot starts with the new generation", async () => {
  const { world, done } = await started(1);
  const asked = world.ask({ cmd: "reload" });
  await settle();
  world.ask({ cmd: "scale", workers: 2 });
  await settle();
  assert.equal(world.workers(2).length, 2, "the canary and the new slot");
  for (const child of world.workers(2)) child.ready();
  await settle();
  assert.equal(asked.reply?.ok, true);
  assert.equal(world.workers(2).length, 2);
  assert.deepEqual(world.workers(1), []);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a stop during a reload settles it and drains everything", async () => {
  const { world, done } = await started(2);
  const asked = world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers().length, 3);
  assert.equal(await stop(world, done), 0);
  assert.deepEqual(asked.reply, { ok: false, error: "the instance is stopping", kind: "failure" });
  assert.deepEqual(world.workers(), [], "every worker, the canary too, is gone");
});

Deno.test("core: a stop kills what is still draining after --grace, once", async () => {
  const { world, done } = await started(1, { grace: 3000 });
  world.drainsAtOnce = false;
  world.inbox.signal("SIGTERM");
  await settle();
  const worker = world.workers()[0];
  assert.equal(worker.state, "draining");
  await world.clock.advance(2999);
  assert.equal(worker.killedAt, undefined);
  await world.clock.advance(1);
  assert.equal(worker.killedAt, 3000);
  assert.equal(await done, 0);
});

Deno.test("core: a crashing worker is restarted after 100, 200, 400 ms", async () => {
  const { world, done } = await started(1, { watch: undefined });
  const starts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const worker = world.workers()[0];
    worker.exit(1);
    await settle();
    const failedAt = world.clock.now();
    let restarted: FakeChild | undefined;
    while (!restarted) {
      await world.clock.advance(10);
      restarted = world.workers().find((c) => c !== worker);
    }
    starts.push(world.clock.now() - failedAt);
    restarted.ready();
    await settle();
  }
  assert.deepEqual(starts, [100, 200, 400]);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: unwatched, a first start that never becomes ready gives up with exit 1", async () => {
  const world = new FakeWorld();
  let finished = false;
  const done = new Supervisor(options({ watch: undefined }), world).run();
  done.then(() => finished = true);
  await settle();
  for (let i = 0; i < 20 && !finished; i++) {
    for (const child of world.workers()) child.exit(1);
    await world.clock.advance(2000);
  }
  assert.equal(await done, 1);
  // 5 failures in a row of one slot: 5 starts each, at most.
  assert.ok(world.children.length <= 10, `${world.children.length} starts`);
  assert.deepEqual(world.workers(), []);
});

for (const oneStepSwitch of [false, true]) {
  Deno.test(`core: a new generation starts crashed slots at once, and its summary says started (one step: ${oneStepSwitch})`, async () => {
    const world = new FakeWorld();
    const done = new Supervisor(options({ oneStepSwitch }), world).run();
    await settle();
    for (const child of world.workers()) child.exit(1); // broken code
    await world.clock.advance(100);
    for (const child of world.workers()) child.exit(1);
    await settle(); // both slots now wait out a 200 ms backoff
    const asked = world.ask({ cmd: "reload" });
    await settle();
    assert.equal(world.workers(2).length, 2, "no backoff for new code");
    for (const child of world.workers(2)) child.ready();
    await settle();
    assert.match(
      (asked.reply as { message: string }).message,
      /^generation 2 started 2 workers; all ready in \d+ ms/,
    );
    assert.equal(await stop(world, done), 0);
  });
}

Deno.test("core: one-step switch: all new workers start at once; the first ready takes over, the others join", async () => {
  const { world, done } = await started(3, { oneStepSwitch: true });
  const asked = world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(2).length, 3, "every new worker starts at once");
  assert.equal(world.workers(1).length, 3, "no old worker leaves before a new one is ready");
  world.workers(2)[0].ready();
  await settle();
  assert.equal(
    world.workers(1).length,
    3,
    "the whole old generation leaves service with the first",
  );
  assert.deepEqual(world.steered, [world.workers(2)[0].pid], "the first new worker serves alone");
  assert.ok(world.workers(1).every((c) => c.state === "ready"), "held: their clients move later");
  world.workers(2)[1].ready();
  world.workers(2)[2].ready();
  await settle();
  assert.deepEqual(world.steered.toSorted(), world.workers(2).map((c) => c.pid).toSorted());
  assert.deepEqual(world.workers(1), [], "every new worker serves: the old ones drained");
  assert.equal(asked.reply?.ok, true);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: one-step switch with broken code: every new worker fails, the old ones never drain", async () => {
  const { world, done } = await started(2, { oneStepSwitch: true });
  const asked = world.ask({ cmd: "reload" });
  await settle();
  for (const child of world.workers(2)) child.exit(1);
  await settle();
  assert.equal(asked.reply?.ok, false);
  assert.equal(world.workers(1).length, 2);
  assert.ok(world.workers(1).every((c) => c.state === "ready"));
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: spares are released as the next workers and replaced; a dead spare is replaced", async () => {
  const world = new FakeWorld();
  const base = options();
  const done = new Supervisor({ ...base, spares: 2 }, world).run();
  await settle();
  const spares = () => world.children.filter((c) => c.spare && c.state !== "exited");
  assert.equal(spares().length, 2, "two spares wait");
  assert.equal(world.workers(1).length, 2);
  for (const child of world.workers(1)) child.ready();
  await settle();
  const waiting = spares();
  world.inbox.changes({ changes: [{ path: "main.ts", kind: "changed" }] });
  await settle();
  const canary = world.workers(2)[0];
  assert.ok(waiting.includes(canary), "the canary is a released spare");
  assert.equal(canary.spec.id, 0);
  assert.equal(spares().length, 1, "no new spare while a worker starts");
  canary.ready();
  await settle();
  world.workers(2)[1].ready();
  await settle();
  assert.equal(spares().length, 2, "new spares replace the released ones");
  spares()[0].exit(1); // a spare dies on its own
  await settle();
  await world.clock.advance(1000);
  assert.equal(spares().length, 2, "and is replaced after a pause");
  assert.equal(await stop(world, done), 0);
  assert.deepEqual(spares(), [], "a stop ends the spares");
});

Deno.test("core: a change to anything but the app's modules (deno.json, .env) discards the spares first", async () => {
  const world = new FakeWorld();
  const done = new Supervisor({ ...options(), spares: 1 }, world).run();
  await settle();
  for (const child of world.workers(1)) child.ready();
  await settle();
  const spare = world.children.find((c) => c.spare && c.state !== "exited")!;
  world.inbox.changes({ changes: [{ path: "deno.json", kind: "changed" }] });
  await settle();
  assert.equal(spare.state, "exited", "the spare read the old deno.json: it goes");
  assert.ok(!world.workers(2).includes(spare), "a fresh process runs the new generation");
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a worker leaves the steered set before it drains (rolling, scale, crash, stop)", async () => {
  const { world, done } = await started(2);
  const serving = () => world.workers().filter((c) => c.state === "ready").map((c) => c.pid);
  assert.deepEqual(world.steered.toSorted(), serving().toSorted(), "the first workers");
  // Rolling: each old worker leaves as its replacement comes in.
  world.ask({ cmd: "reload" });
  await settle();
  const canary = world.workers(2)[0];
  assert.ok(!world.steered.includes(canary.pid), "a starting worker is not steered");
  canary.ready();
  await settle();
  assert.ok(world.steered.includes(canary.pid), "a ready replacement is");
  world.workers(2)[1].ready();
  await settle();
  assert.deepEqual(world.steered.toSorted(), world.workers(2).map((c) => c.pid).toSorted());
  // Scale up, then down.
  world.ask({ cmd: "scale", workers: 3 });
  await settle();
  world.workers().find((c) => c.state === "starting")!.ready();
  await settle();
  assert.equal(world.steered.length, 3);
  world.ask({ cmd: "scale", workers: 1 });
  await settle();
  assert.equal(world.steered.length, 1);
  // A crash: the dead worker is out, its successor in once ready.
  const [last] = world.workers();
  last.exit(1);
  await settle();
  assert.deepEqual(world.steered, []);
  await world.clock.advance(60_000);
  world.workers().find((c) => c.state === "starting")!.ready();
  await settle();
  assert.deepEqual(world.steered, serving());
  assert.equal(await stop(world, done), 0);
  assert.deepEqual(world.steered, [], "stopping steers nothing");
  assert.deepEqual(world.drainedWhileSteered, [], "no worker drained while still steered");
});

Deno.test("core: with a one-step switch, the old workers are out of the steered set before they drain", async () => {
  const { world, done } = await started(3, { oneStepSwitch: true });
  const old = world.steered.toSorted();
  world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(2).filter((c) => c.state === "starting").length, 3);
  assert.deepEqual(world.steered.toSorted(), old, "the old generation serves until the switch");
  for (const child of world.workers(2)) child.ready();
  await settle();
  assert.deepEqual(world.steered.toSorted(), world.workers(2).map((c) => c.pid).toSorted());
  assert.deepEqual(world.drainedWhileSteered, []);
  assert.equal(await stop(world, done), 0);
});

/** A supervisor taking over a running instance (fake), with a custom process beside 2 workers. */
async function takingOver() {
  const world = new FakeWorld();
  world.takeover = { stopAsked: 0, claimed: 0, exited: () => {} };
  const consumer = { name: "consumer", entry: "consumer.ts", count: 1, args: {} };
  const processes = [{ ...consumer, restart: "always" as const, reload: true, grace: 1000 }];
  const supervisor = new Supervisor({ ...options({ settle: 1000, processes }), workers: 2 }, world);
  const done = supervisor.run();
  await settle();
  return { world, done, takeover: world.takeover, supervisor };
}

const customProcesses = (world: FakeWorld) =>
  world.children.filter((child) => child.spec.role === "process" && child.state !== "exited");

Deno.test("core: a takeover steers nothing and stops no one until its workers have settled, then takes the name; the custom processes start last", async () => {
  const { world, done, takeover } = await takingOver();
  assert.equal(world.workers(1).length, 2);
  assert.deepEqual(customProcesses(world), [], "no consumer beside the old instance's");
  for (const child of world.workers(1)) child.ready();
  await settle();
  assert.deepEqual(world.steered, [], "the old instance's steering stands while ours settle");
  await world.clock.advance(999);
  assert.equal(takeover.stopAsked, 0, "the old instance is not told before --settle has passed");
  await world.clock.advance(1);
  assert.equal(takeover.stopAsked, 1);
  assert.deepEqual(world.steered.toSorted(), world.workers(1).map((c) => c.pid).toSorted());
  assert.equal(takeover.claimed, 0, "the name is the old instance's until it is gone");
  assert.deepEqual(customProcesses(world), []);
  takeover.exited("stopped");
  await settle();
  assert.equal(takeover.claimed, 1);
  assert.equal(customProcesses(world).length, 1, "the consumer starts once the old one is gone");
  const status = world.ask({ cmd: "status" });
  await settle();
  const tookOver = (status.reply as { status: StatusReport }).status.supervisor.tookOver;
  assert.deepEqual([tookOver?.pid, tookOver?.version], [42, "0.0.9"]);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a takeover whose worker fails before the switch ends with exit 1; the old instance is never told", async () => {
  const { world, done, takeover } = await takingOver();
  const [first, second] = world.workers(1);
  first.ready();
  second.exit(1);
  await settle();
  assert.equal(await done, 1);
  assert.equal(takeover.stopAsked, 0);
  assert.equal(takeover.claimed, 0);
  assert.deepEqual(world.steered, []);
  assert.deepEqual(world.workers(), [], "our workers are gone");
});

Deno.test("core: a worker that exits while the takeover settles ends it too", async () => {
  const { world, done, takeover } = await takingOver();
  for (const child of world.workers(1)) child.ready();
  await settle();
  await world.clock.advance(500);
  world.workers(1)[0].exit(1);
  await settle();
  assert.equal(await done, 1);
  assert.equal(takeover.stopAsked, 0);
  assert.deepEqual(world.steered, []);
});
