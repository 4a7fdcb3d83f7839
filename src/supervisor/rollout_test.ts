/**
 * The rollout state machine, driven by a fake pool and a number for a clock:
 * every way a reload can end, in milliseconds, with no process started.
 */
import assert from "node:assert/strict";
import type { Child } from "../child/child.ts";
import type { ControlReply } from "../control/protocol.ts";
import { LEAD_START_MS, Rollout, type RolloutPool, type RolloutSettings } from "./rollout.ts";
import type { ReloadRequest } from "./reload_request.ts";
import { describeChanges } from "./report.ts";
import type { SlotView, WorkerExit } from "./worker_pool.ts";

/** A worker as the rollout sees it: a generation, a state, when it started and became ready. */
class Worker {
  state: "starting" | "ready" | "draining" | "exited" = "starting";
  readyAt?: number;
  readonly ports = new Set<number>();
  constructor(readonly spec: { id: number; generation: number }, readonly startedAt: number) {}
  listen(): void {
    this.ports.add(8000);
  }
  uptimeMs(now = clock): number {
    return now - this.startedAt;
  }
  ready(): void {
    this.state = "ready";
    this.readyAt = clock;
  }
}

let clock = 0;

interface FakeSlot {
  id: number;
  current?: Worker;
  replacement?: Worker;
  retryAt: number;
}

/** The pool's mechanism, as small as it can be: slots, held predecessors, draining workers. */
class FakePool implements RolloutPool {
  readonly slots: FakeSlot[] = [];
  readonly held = new Map<number, Worker>();
  readonly draining: Worker[] = [];
  steered: Worker[] = [];
  /** How often the held workers were told that the whole new generation serves. */
  handedOff = 0;

  constructor(workers: number) {
    for (let id = 0; id < workers; id++) {
      const worker = new Worker({ id, generation: 1 }, clock);
      worker.ready();
      this.slots.push({ id, current: worker, retryAt: 0 });
    }
    this.steer();
  }
  view(): readonly SlotView[] {
    return this.slots as unknown as SlotView[];
  }
  startReplacement(id: number, generation: number): void {
    this.slots[id].replacement = new Worker({ id, generation }, clock);
  }
  promote(id: number, hold = false): void {
    const slot = this.slots[id];
    const predecessor = slot.current;
    slot.current = slot.replacement;
    slot.replacement = undefined;
    if (predecessor) this.#leave(id, predecessor, hold);
  }
  standDown(id: number, hold = false): void {
    const slot = this.slots[id];
    const current = slot.current!;
    slot.current = undefined;
    this.#leave(id, current, hold);
  }
  #leave(id: number, worker: Worker, hold: boolean): void {
    if (hold) this.held.set(id, worker);
    else this.#drain(worker);
  }
  steer(): void {
    this.steered = this.slots.flatMap((slot) =>
      slot.current?.state === "ready" ? [slot.current] : []
    );
  }
  holding(): boolean {
    return this.held.size > 0;
  }
  handOffHeld(): void {
    this.handedOff++;
  }
  releaseHeld(): void {
    for (const worker of this.held.values()) this.#drain(worker);
    this.held.clear();
  }
  putBack(): void {
    for (const [id, predecessor] of this.held) {
      const current = this.slots[id].current;
      if (current) this.#drain(current);
      this.slots[id].current = predecessor;
    }
    this.held.clear();
    this.cancelReplacements();
  }
  cancelReplacement(id: number): void {
    const slot = this.slots[id];
    if (slot.replacement) this.#drain(slot.replacement);
    slot.replacement = undefined;
  }
  cancelReplacements(): void {
    for (const slot of this.slots) {
      if (slot.replacement) this.#drain(slot.replacement);
      slot.replacement = undefined;
    }
    this.steer();
  }
  outdated(generation: number): number {
    return this.slots.filter((slot) =>
      slot.replacement !== undefined || !slot.current ||
      slot.current.spec.generation < generation || slot.current.state === "starting"
    ).length;
  }
  /** A worker exits on its own; returns what the pool would report. */
  exit(worker: Worker): WorkerExit {
    worker.state = "exited";
    const slot = this.slots[worker.spec.id];
    if (slot.replacement === worker) {
      slot.replacement = undefined;
      return {
        kind: "replacement-failed",
        why: `worker ${worker.spec.id} exited`,
        summary: "boom",
      };
    }
    if (slot.current === worker) slot.current = undefined;
    this.steer();
    return {
      kind: "crashed",
      why: "exited with code 1",
      summary: "boom",
      failures: 1,
      wasReady: worker.readyAt !== undefined,
    };
  }
  /** Live workers of `generation`. */
  of(generation: number): Worker[] {
    const all = [
      ...this.slots.flatMap((s) => [s.current, s.replacement]),
      ...this.held.values(),
    ];
    return all.filter((w): w is Worker =>
      w !== undefined && w.state !== "exited" && w.state !== "draining" &&
      w.spec.generation === generation
    );
  }
  #drain(worker: Worker): void {
    if (worker.state !== "exited") worker.state = "draining";
    this.draining.push(worker);
  }
}

function setup(
  workers: number,
  settings: Partial<RolloutSettings> = {},
  request: Partial<ReloadRequest> = {},
) {
  clock = 0;
  const pool = new FakePool(workers);
  let processReloads = 0;
  const rollout = new Rollout(
    2,
    { reason: "reload command", files: [], workers: true, processes: false, ...request },
    clock,
    pool,
    { queueReloads: () => processReloads++, restarting: () => false },
    {
      oneStep: false,
      reloadBatch: 1,
      settleMs: 1000,
      canPutBack: false,
      leadFirst: false,
      ...settings,
    },
    true,
  );
  const step = (ms = 0) => {
    clock += ms;
    return rollout.advance(clock).state;
  };
  const exit = (worker: Worker) =>
    rollout.onWorkerExit(worker as unknown as Child, pool.exit(worker));
  /** One step: the lead starts alone, listens, and the others start. */
  const startAll = () => {
    step();
    pool.of(2)[0]?.listen();
    return step();
  };
  return { pool, rollout, step, exit, startAll, processReloads: () => processReloads };
}

Deno.test("rollout, rolling: the canary takes over only after the settle window, then the rest; the replaced drain once all are new", () => {
  const { pool, step } = setup(2);
  assert.equal(step(), "running");
  const [canary] = pool.of(2);
  assert.equal(pool.of(2).length, 1, "the canary alone");
  canary.ready();
  assert.equal(step(999), "running");
  assert.equal(
    pool.slots[0].current?.spec.generation,
    1,
    "its predecessor serves through the window",
  );
  assert.equal(pool.draining.length, 0);
  assert.equal(step(1), "running");
  assert.equal(pool.slots[0].current, canary, "then it takes over");
  assert.equal(pool.held.size, 1, "and its predecessor is held (its clients stay, sent on)");
  assert.equal(pool.draining.length, 0);
  const [, second] = pool.of(2);
  assert.ok(second, "the next one starts");
  second.ready();
  assert.equal(step(1000), "done");
  assert.equal(pool.held.size, 0);
  assert.deepEqual(
    pool.draining.map((w) => w.spec.generation),
    [1, 1],
    "once the whole generation serves, the replaced ones drain together",
  );
});

Deno.test("rollout, rolling: a canary that exits inside the settle window aborts; its predecessor never drained", () => {
  const { pool, step, exit } = setup(2);
  step();
  const [canary] = pool.of(2);
  canary.ready();
  step(300);
  assert.equal(exit(canary), true);
  assert.equal(step(), "aborted");
  assert.equal(pool.of(1).length, 2, "both old workers serve");
  assert.ok(pool.draining.every((w) => w.spec.generation === 2), "none of them was drained");
});

Deno.test("rollout, rolling: exits before ready (a sync throw after bind, a rejected top-level await) abort", () => {
  for (const readyFirst of [false, true]) {
    const { pool, rollout, step, exit } = setup(3);
    step();
    const [canary] = pool.of(2);
    if (readyFirst) canary.ready();
    exit(canary);
    const result = rollout.advance(clock);
    assert.equal(result.state, "aborted");
    if (result.state === "aborted") {
      assert.equal(result.switched, false);
      assert.equal(result.putBack, false);
    }
    assert.equal(pool.of(1).length, 3, "the old generation keeps serving");
  }
});

Deno.test("rollout, rolling: after the canary settled, a later failure is retried, not an abort", () => {
  const { pool, step, exit } = setup(2);
  step();
  pool.of(2)[0].ready();
  step(1000);
  const second = pool.of(2).find((w) => w.state === "starting")!;
  assert.equal(exit(second), false, "an ordinary failure, retried: not the rollout's to judge");
  assert.equal(step(), "running", "not aborted");
  const retry = pool.of(2).find((w) => w.state === "starting")!;
  retry.ready();
  assert.equal(step(1000), "done");
});

Deno.test("rollout, rolling: a worker that exits after the settle window is an ordinary crash", () => {
  const { pool, step, exit } = setup(1);
  step();
  const [canary] = pool.of(2);
  canary.ready();
  assert.equal(step(1000), "done");
  assert.equal(exit(canary), false, "not the rollout's to judge: it is over");
});

Deno.test("rollout, rolling: the new workers all serve only once every slot is new", () => {
  const { pool, rollout, step } = setup(2);
  step();
  pool.of(2)[0].ready();
  step();
  step(1000);
  assert.equal(pool.slots[0].current?.spec.generation, 2, "the canary took over");
  assert.equal(rollout.everyNewServes, false, "a slot still runs old code");
  step();
  pool.of(2)[1].ready();
  step();
  step(1000);
  assert.equal(rollout.everyNewServes, true);
});

Deno.test("rollout, rolling: batches after the canary", () => {
  const { pool, step } = setup(5, { reloadBatch: 2 });
  step();
  assert.equal(pool.of(2).length, 1);
  pool.of(2)[0].ready();
  step(1000);
  assert.equal(pool.of(2).filter((w) => w.state === "starting").length, 2, "a batch of 2");
});

Deno.test("rollout, one step, steered: the old generation is held through the window and put back on failure", () => {
  const { pool, rollout, step, startAll, exit } = setup(2, { oneStep: true, canPutBack: true });
  startAll();
  assert.equal(pool.of(2).length, 2, "the lead, then the other once it listens");
  for (const worker of pool.of(2)) worker.ready();
  assert.equal(step(), "running");
  assert.deepEqual(pool.steered.map((w) => w.spec.generation), [2, 2], "switched at once");
  assert.equal(pool.held.size, 2, "the old ones held, not drained");
  assert.equal(pool.draining.length, 0);
  step(400);
  exit(pool.of(2)[1]);
  const result = rollout.advance(clock);
  assert.equal(result.state, "aborted");
  if (result.state === "aborted") {
    assert.equal(result.putBack, true);
    assert.match(
      result.why,
      /exited \d+ ms after it became ready, within the 1000 ms settle window/,
    );
  }
  assert.deepEqual(pool.steered.map((w) => w.spec.generation), [1, 1], "the old ones serve again");
  assert.equal(pool.of(2).length, 0, "the new one still up drains");
});

Deno.test("rollout, one step: the lead starts alone; the others once it listens", () => {
  const { pool, rollout, step } = setup(4, { oneStep: true, leadFirst: true });
  step();
  const [lead] = pool.of(2);
  assert.equal(pool.of(2).length, 1, "the lead alone");
  assert.equal(rollout.nextDeadline(clock), LEAD_START_MS, "its head start's end");
  step(5);
  assert.equal(pool.of(2).length, 1, "not yet listening: still alone");
  lead.listen();
  step(1);
  assert.equal(pool.of(2).length, 4, "it listens: the others start");
  assert.equal(rollout.nextDeadline(clock), Infinity, "nothing left to start");
});

Deno.test("rollout, one step, not steered: every new worker starts at once (no lead)", () => {
  const { pool, step } = setup(3, { oneStep: true, leadFirst: false });
  step();
  assert.equal(pool.of(2).length, 3);
});

Deno.test("rollout, one step: a lead slow to listen holds the others back LEAD_START_MS at most", () => {
  const { pool, step } = setup(3, { oneStep: true, leadFirst: true });
  step();
  assert.equal(pool.of(2).length, 1);
  step(LEAD_START_MS - 1);
  assert.equal(pool.of(2).length, 1);
  step(1);
  assert.equal(pool.of(2).length, 3, "its head start is over");
});

Deno.test("rollout, one step: a lead that is ready (its app says so) lets the others start", () => {
  const { pool, step } = setup(2, { oneStep: true, leadFirst: true });
  step();
  pool.of(2)[0].ready();
  step();
  assert.equal(pool.of(2).length, 2);
});

Deno.test("rollout, one step: a lead that fails before it listens aborts; no other new worker started", () => {
  const { pool, rollout, step, exit } = setup(3, { oneStep: true, leadFirst: true });
  step();
  const [lead] = pool.of(2);
  exit(lead);
  assert.equal(rollout.advance(clock).state, "aborted");
  assert.equal(pool.of(2).length, 0, "the others never started");
  assert.equal(pool.of(1).length, 3, "the old ones serve on");
});

Deno.test("rollout, one step: when no lead could start (every slot backing off), all start together later", () => {
  const { pool, step } = setup(3, { oneStep: true, leadFirst: true });
  for (const slot of pool.slots) slot.retryAt = 50;
  step();
  assert.equal(pool.of(2).length, 0);
  step(50);
  assert.equal(pool.of(2).length, 3);
});

Deno.test("rollout, one step: the first ready new worker takes over, every old one leaves, the rest join", () => {
  const { pool, rollout, step, startAll, exit } = setup(3, { oneStep: true, canPutBack: true });
  startAll();
  const [a, b, c] = pool.of(2);
  b.ready();
  assert.equal(step(), "running");
  assert.deepEqual(pool.steered, [b], "the first ready serves alone");
  assert.equal(pool.held.size, 3, "every old worker is held, none serves");
  a.ready();
  step(10);
  assert.deepEqual(pool.steered.toSorted((x, y) => x.spec.id - y.spec.id), [a, b], "a joins");
  exit(c); // the last one fails inside the window: everything goes back
  const result = rollout.advance(clock);
  assert.equal(result.state, "aborted");
  assert.deepEqual(pool.steered.map((w) => w.spec.generation), [1, 1, 1]);
});

for (const oneStep of [true, false]) {
  Deno.test(`rollout, ${oneStep ? "one step" : "rolling"}: a recycle's replacement still starting as the reload begins is let go; the reload replaces that worker`, () => {
    const { pool, step } = setup(2, { oneStep });
    // Slot 1 is being recycled: its replacement, labelled with the old generation, reads
    // whatever code is on disk as it starts (new code, ahead of the switch).
    const recycling = new Worker({ id: 1, generation: 1 }, clock);
    pool.slots[1].replacement = recycling;
    const old = pool.slots[1].current!;
    step();
    assert.equal(recycling.state, "draining", "the recycle's replacement is let go at once");
    assert.equal(pool.slots[1].current, old, "the worker it was to replace serves on meanwhile");
    assert.deepEqual(pool.steered.map((w) => w.spec.generation), [1, 1]);
    // Each slot gets its generation 2 worker: both at once, or the canary first.
    for (let round = 0; round < 3; round++) {
      for (const worker of pool.of(2)) if (worker.state === "starting") worker.ready();
      step(1000);
    }
    assert.equal(step(), "done");
    assert.deepEqual(pool.steered.map((w) => w.spec.generation), [2, 2]);
    assert.ok(!pool.steered.includes(recycling), "the let-go replacement never served");
  });
}

Deno.test("rollout, one step: after a superseded switch, the next rollout replaces what it left starting", () => {
  const first = setup(2, { oneStep: true });
  first.step();
  first.pool.of(2)[0].ready();
  first.step(); // switched: slot 1 stood down, its replacement still starting
  first.rollout.supersede();
  assert.equal(first.step(), "done", "superseded");
  assert.match(
    first.rollout.summary(2, 1, 0, clock),
    /^generation 2: 1 of 2 workers ready in \d+ ms, when a newer change took over from it \(reload command\)$/,
    "nothing failed: the summary says so",
  );
  // The next rollout, generation 3, on the same pool.
  const next = new Rollout(
    3,
    { reason: "reload command", files: [], workers: true, processes: false },
    clock,
    first.pool,
    { queueReloads: () => {}, restarting: () => false },
    { oneStep: true, reloadBatch: 1, settleMs: 1000, canPutBack: false, leadFirst: false },
    true,
  );
  next.advance(clock);
  assert.equal(first.pool.slots[1].replacement, undefined, "generation 2's starter is let go");
  // What the pool's fill does with the empty slot, and the new replacement of slot 0.
  first.pool.slots[1].current = new Worker({ id: 1, generation: 3 }, clock);
  first.pool.slots[1].current.ready();
  first.pool.slots[0].replacement!.ready();
  next.advance(clock);
  clock += 1000;
  assert.equal(next.advance(clock).state, "done", "not held up by an old replacement");
});

Deno.test("rollout, one step, steered: past the window the held workers drain and it is done", () => {
  const { pool, step, startAll } = setup(2, { oneStep: true, canPutBack: true });
  startAll();
  for (const worker of pool.of(2)) worker.ready();
  step();
  assert.equal(step(999), "running");
  assert.equal(pool.held.size, 2);
  assert.equal(step(1), "done");
  assert.equal(pool.held.size, 0);
  assert.equal(pool.draining.length, 2);
});

Deno.test("rollout, one step: a newer reload cuts a switched generation's settle window short", () => {
  const { pool, rollout, step, startAll } = setup(2, { oneStep: true, canPutBack: true });
  startAll();
  rollout.supersede();
  assert.equal(step(), "running", "before the switch it changes nothing");
  for (const worker of pool.of(2)) worker.ready();
  assert.equal(step(10), "running", "switched, settling");
  rollout.supersede();
  assert.equal(step(), "done", "the next save does not wait for the window");
  assert.equal(pool.held.size, 0, "the held workers drain");
});

Deno.test("rollout, one step, not steered: the old generation is held from the switch; a failure in the window aborts, and they drain (nothing puts them back)", () => {
  const { pool, rollout, step, startAll, exit } = setup(2, { oneStep: true, canPutBack: false });
  startAll();
  for (const worker of pool.of(2)) worker.ready();
  step();
  assert.equal(pool.held.size, 2, "out of service from the switch, clients not yet moved");
  assert.equal(pool.draining.length, 0);
  exit(pool.of(2)[0]);
  const result = rollout.advance(clock);
  assert.equal(result.state, "aborted");
  if (result.state === "aborted") {
    assert.equal(result.switched, true);
    assert.equal(result.putBack, false);
  }
  assert.equal(pool.held.size, 0);
  assert.equal(pool.draining.filter((w) => w.spec.generation === 1).length, 2);
});

Deno.test("rollout, one step: the old generation drains only once every new worker serves", () => {
  const { pool, step, startAll } = setup(3, { oneStep: true, canPutBack: false, settleMs: 100 });
  startAll();
  const [a, b, c] = pool.of(2);
  a.ready();
  step();
  assert.equal(pool.held.size, 3, "switched at the first ready");
  b.ready();
  assert.equal(step(200), "running", "the window is over, but one new worker is not ready");
  assert.equal(pool.held.size, 3);
  c.ready();
  assert.equal(step(), "done");
  assert.equal(pool.held.size, 0);
  assert.equal(pool.draining.filter((w) => w.spec.generation === 1).length, 3);
});

Deno.test("rollout, one step: the held workers hand their clients over once, when every new worker serves", () => {
  const { pool, rollout, step, startAll } = setup(3, {
    oneStep: true,
    canPutBack: true,
    settleMs: 1000,
  });
  startAll();
  assert.equal(rollout.everyNewServes, false, "starting");
  const [a, b, c] = pool.of(2);
  a.ready();
  step();
  assert.equal(pool.held.size, 3, "switched at the first ready");
  assert.equal(pool.handedOff, 0, "not while only some new workers serve");
  assert.equal(rollout.everyNewServes, false, "the serving workers still change");
  b.ready();
  step(10);
  assert.equal(pool.handedOff, 0);
  c.ready();
  assert.equal(step(10), "running", "still inside the settle window");
  assert.equal(pool.handedOff, 1, "told once the whole generation serves");
  assert.equal(rollout.everyNewServes, true, "clients may be spread from now on (rebalance.ts)");
  assert.equal(pool.held.size, 3, "still held: they may yet be put back");
  step(10);
  assert.equal(pool.handedOff, 1, "told once");
});

Deno.test("rollout, one step: a new worker that fails before the switch aborts with the old ones untouched", () => {
  const { pool, rollout, startAll, exit } = setup(3, { oneStep: true, canPutBack: true });
  startAll();
  const [a, b, c] = pool.of(2);
  a.ready();
  b.ready();
  exit(c);
  assert.equal(rollout.advance(clock).state, "aborted");
  assert.equal(pool.of(1).length, 3);
  assert.equal(pool.of(2).length, 0, "the ready new ones are let go");
  assert.deepEqual(pool.steered.map((w) => w.spec.generation), [1, 1, 1]);
});

Deno.test("rollout: the settle window's end is the next deadline", () => {
  const { pool, rollout, step, startAll } = setup(1, { oneStep: true, canPutBack: true });
  startAll();
  assert.equal(rollout.nextDeadline(clock), Infinity);
  pool.of(2)[0].ready();
  step(50);
  assert.equal(rollout.nextDeadline(clock), 1050);
  assert.equal(rollout.nextDeadline(1050), Infinity, "a window that is over wakes nobody");
  const rolling = setup(1);
  rolling.step(10);
  rolling.pool.of(2)[0].ready();
  assert.equal(rolling.rollout.nextDeadline(clock), 1010);
});

Deno.test("rollout: custom processes reload once the workers are done", () => {
  const { pool, step, processReloads } = setup(1, {}, { processes: true });
  step();
  assert.equal(processReloads(), 0);
  pool.of(2)[0].ready();
  assert.equal(step(1000), "done");
  assert.equal(processReloads(), 1);
});

Deno.test("rollout: a stop during a reload lets its replacements go and answers every waiter", () => {
  const heard: ControlReply[] = [];
  const { pool, rollout, step } = setup(2, {}, { reply: (r) => heard.push(r) });
  step();
  // A reload queued behind this one: its caller must hear the stop too.
  rollout.queueFollowUp({
    reason: "reload command",
    files: [],
    workers: true,
    processes: true,
    reply: (r) => heard.push(r),
  });
  const stopping: ControlReply = { ok: false, error: "the instance is stopping", kind: "failure" };
  rollout.cancel(stopping);
  assert.deepEqual(heard, [stopping, stopping]);
  assert.equal(rollout.followUp, undefined, "the follow-up will never run");
  assert.equal(pool.of(2).length, 0);
  assert.equal(pool.of(1).length, 2);
});

Deno.test("rollout: everything that arrives during it coalesces into one follow-up", () => {
  const change = (files: string[]) => ({ reason: "change", files, workers: true, processes: true });
  const replies: ControlReply[] = [];
  const { rollout } = setup(1, {}, change(["a.ts"]));
  assert.equal(rollout.followUp, undefined);
  rollout.queueFollowUp(change(["b.ts", "a.ts"]));
  rollout.queueFollowUp({
    reason: "SIGUSR2",
    files: [],
    workers: false,
    processes: true,
    reply: (r) => replies.push(r),
  });
  rollout.queueFollowUp(change(["c.ts"]));
  const followUp = rollout.followUp!;
  assert.equal(followUp.reason, "change, SIGUSR2");
  assert.deepEqual(followUp.files, ["a.ts", "b.ts", "c.ts"]);
  assert.equal(followUp.workers, true);
  followUp.reply?.({ ok: true });
  assert.deepEqual(replies, [{ ok: true }], "a waiter on a coalesced reload hears its outcome");
  assert.match(
    rollout.summary(4, 4, 0, 12),
    /^reloaded 4 workers in 12 ms \(generation 2; 1 file: a\.ts\)$/,
  );
  assert.match(rollout.summary(1, 1, 2, 5), /^reloaded 1 worker and 2 processes in/);
  assert.equal(
    describeChanges(["a", "b", "c", "d", "e", "f", "g"]),
    "7 files: a, b, c, d, e, and 2 more",
  );
  assert.equal(describeChanges(["a.ts", "b.ts"], "changed"), "2 files changed: a.ts, b.ts");
});
