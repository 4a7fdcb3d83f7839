/** Spreading keep-alive clients: who lets a connection go, and when it is looked at. */
import assert from "node:assert/strict";
import type { Child } from "../child/child.ts";
import {
  CHECK_MS,
  FOLLOW_MS,
  FOLLOW_SHARE,
  MAX_ROUNDS,
  READ_SHARE,
  Rebalancer,
  type RebalanceSeam,
  RECHECK_MS,
  ROUND_MS,
  SETTLE_MS,
  toShed,
} from "./rebalance.ts";

Deno.test("toShed: those above the mean let one go until the counts are at most one apart", () => {
  assert.deepEqual(toShed([4, 4, 4, 4]), [false, false, false, false]);
  assert.deepEqual(toShed([5, 5, 4, 4]), [false, false, false, false], "as even as 18 on 4 can be");
  assert.deepEqual(toShed([5, 3, 4, 4]), [true, false, false, false]);
  assert.deepEqual(toShed([6, 4, 3, 3]), [true, false, false, false]);
  assert.deepEqual(toShed([5, 5, 5, 1]), [true, true, true, false], "one too low: all above go");
  assert.deepEqual(toShed([16, 0, 0, 0]), [true, false, false, false]);
  assert.deepEqual(toShed([3, 0, 0, 0]), [false, false, false, false], "too few to spread");
  assert.deepEqual(toShed([9]), [false], "one worker");
});

class FakeWorker {
  shed = 0;
  constructor(readonly pid: number) {}
}

/** Each pid's connections, as many as `counts` says, named the same at every look (they last). */
function lasting(counts: Map<number, number>, epoch = 0): Map<number, string[]> {
  return new Map(
    [...counts].map((
      [pid, n],
    ) => [pid, Array.from({ length: n }, (_, k) => `${epoch}:${pid}:${k}`)]),
  );
}

function setup(counts: Map<number, number>) {
  const workers = [new FakeWorker(10), new FakeWorker(11)];
  // A reload moves every client: `epoch` names their new connections.
  const state = { reloading: false, cpuMs: 0, epoch: 0 };
  const seam: RebalanceSeam = {
    serving: () =>
      state.reloading ? undefined : workers.map((w) =>
        ({
          pid: w.pid,
          shed: () => w.shed++,
        }) as unknown as Child
      ),
    connections: () => ({ held: lasting(counts, state.epoch), cpuMs: state.cpuMs }),
  };
  return { workers, state, rebalancer: new Rebalancer(seam) };
}

Deno.test("Rebalancer: after the workers change it waits SETTLE_MS, notes the connections, then sheds every ROUND_MS until spread", () => {
  const counts = new Map([[10, 9], [11, 7]]);
  const { workers, rebalancer } = setup(counts);
  rebalancer.advance(0);
  assert.equal(rebalancer.nextDeadline(), SETTLE_MS, "the clients reconnect first");
  rebalancer.advance(SETTLE_MS);
  assert.deepEqual(workers.map((w) => w.shed), [0, 0], "the first look only notes them");
  assert.equal(rebalancer.nextDeadline(), SETTLE_MS + ROUND_MS);
  rebalancer.advance(SETTLE_MS + ROUND_MS);
  assert.deepEqual(workers.map((w) => w.shed), [1, 0], "they lasted: the busy one lets one go");
  assert.equal(rebalancer.nextDeadline(), SETTLE_MS + 2 * ROUND_MS);
  counts.set(10, 8).set(11, 8);
  rebalancer.advance(SETTLE_MS + 2 * ROUND_MS);
  assert.deepEqual(workers.map((w) => w.shed), [1, 0], "even: nothing more");
  rebalancer.advance(SETTLE_MS + 3 * ROUND_MS);
  assert.deepEqual(workers.map((w) => w.shed), [1, 0], "still even");
  assert.equal(
    rebalancer.nextDeadline(),
    SETTLE_MS + 4 * ROUND_MS,
    "within FOLLOW_MS of the change, looked at again soon: clients may still be reconnecting",
  );
  rebalancer.advance(FOLLOW_MS);
  assert.equal(
    rebalancer.nextDeadline(),
    FOLLOW_MS + CHECK_MS,
    "after that, looked at again later",
  );
});

/** Rebalancer over two fake workers whose connections, at each look, `look(n)` names. */
function looking(look: (n: number) => [string[], string[]]) {
  let looks = 0;
  const workers = [new FakeWorker(10), new FakeWorker(11)];
  const rebalancer = new Rebalancer({
    serving: () => workers.map((w) => ({ pid: w.pid, shed: () => w.shed++ }) as unknown as Child),
    connections: () => {
      const [a, b] = look(++looks);
      return { held: new Map([[10, a], [11, b]]), cpuMs: 0 };
    },
  });
  /** Runs the looks from `from` until `until`; returns when each came. */
  const run = (from: number, until: number) => {
    const at: number[] = [];
    let now = from;
    while (now < until) {
      const before = looks;
      rebalancer.advance(now);
      if (looks > before) at.push(now);
      now = rebalancer.nextDeadline();
    }
    return at;
  };
  return { workers, rebalancer, run };
}

/** `n` connections, none seen before: named by the look and `tag`. */
const fresh = (look: number, tag: string, n: number) =>
  Array.from({ length: n }, (_, k) => `${look}:${tag}${k}`);

Deno.test("Rebalancer: connections that come and go (a new one per request) are never let go, and the looks space out to CHECK_MS", () => {
  // As uneven as a snapshot of Connection: close clients gets, never the same ones twice, and
  // never the same counts twice in a row.
  const sizes = [[6, 1], [5, 2], [1, 6], [2, 5]];
  const { workers, rebalancer, run } = looking((n) => {
    const [a, b] = sizes[n % sizes.length];
    return [fresh(n, "a", a), fresh(n, "b", b)];
  });
  rebalancer.advance(0);
  const looks = run(SETTLE_MS, FOLLOW_MS + 6 * CHECK_MS);
  assert.deepEqual(workers.map((w) => w.shed), [0, 0]);
  const following = looks.filter((at) => at < FOLLOW_MS);
  const followingGaps = following.slice(1).map((at, i) => at - following[i]);
  assert.ok(
    followingGaps.length > 10 && followingGaps.every((gap) => gap === ROUND_MS),
    `every ROUND_MS while following: ${followingGaps}`,
  );
  // Past FOLLOW_MS, RECHECK_MS and twice as long each time, up to CHECK_MS.
  const later = looks.filter((at) => at >= FOLLOW_MS);
  const gaps = later.slice(1).map((at, i) => at - later[i]);
  const doubling = [1, 2, 4, 8, 16].map((times) => times * RECHECK_MS);
  assert.ok(doubling.at(-1)! < CHECK_MS && 2 * doubling.at(-1)! >= CHECK_MS);
  assert.deepEqual(gaps.slice(0, doubling.length), doubling, `${later}`);
  const rest = gaps.slice(doubling.length);
  assert.ok(rest.length >= 3 && rest.every((gap) => gap === CHECK_MS), `then CHECK_MS: ${gaps}`);
});

Deno.test("Rebalancer: beside keep-alive clients that are spread, connections that come and go move none of them", () => {
  // 4 keep-alive connections on each worker, the same at every look, and short ones beside them.
  const kept = (tag: string) => Array.from({ length: 4 }, (_, k) => `kept:${tag}${k}`);
  const sizes = [[5, 0], [0, 3], [6, 1], [2, 7]];
  const { workers, rebalancer, run } = looking((n) => {
    const [a, b] = sizes[n % sizes.length];
    return [[...kept("a"), ...fresh(n, "a", a)], [...kept("b"), ...fresh(n, "b", b)]];
  });
  rebalancer.advance(0);
  const looks = run(SETTLE_MS, FOLLOW_MS + 2 * CHECK_MS);
  assert.ok(looks.length > 20, `${looks}`);
  assert.deepEqual(workers.map((w) => w.shed), [0, 0]);
});

Deno.test("Rebalancer: keep-alive clients that arrive after FOLLOW_MS are spread at the look RECHECK_MS after the one that first saw them", () => {
  let arrived = false;
  const { workers, rebalancer, run } = looking(() =>
    arrived
      ? [Array.from({ length: 9 }, (_, k) => `new:a${k}`), ["new:b0"]]
      : [["old:a0", "old:a1"], ["old:b0", "old:b1"]]
  );
  rebalancer.advance(0);
  const quiet = run(SETTLE_MS, FOLLOW_MS + CHECK_MS);
  assert.deepEqual(workers.map((w) => w.shed), [0, 0], "spread: nothing to do");
  arrived = true;
  const [first, second] = run(rebalancer.nextDeadline(), rebalancer.nextDeadline() + 1);
  assert.ok(quiet.length > 0);
  assert.equal(second, undefined, "one look at a time");
  assert.deepEqual(workers.map((w) => w.shed), [0, 0], "the first look that sees them notes them");
  assert.equal(rebalancer.nextDeadline(), first + RECHECK_MS);
  rebalancer.advance(first + RECHECK_MS);
  assert.deepEqual(workers.map((w) => w.shed), [1, 0], "they lasted: the busy one lets one go");
});

Deno.test("Rebalancer: connections that stay (WebSockets) stop it after rounds that did not help, until the counts change", () => {
  const counts = new Map([[10, 12], [11, 4]]);
  const { workers, rebalancer } = setup(counts);
  rebalancer.advance(0);
  let now = SETTLE_MS;
  for (let round = 0; round < 20; round++) {
    rebalancer.advance(now);
    now = rebalancer.nextDeadline();
  }
  // 10 looks in which no count moved: the first only noted the connections, 9 let one go.
  assert.equal(workers[0].shed, 9, "stopped after 10 looks in which no count moved");
  const given = workers[0].shed;
  rebalancer.advance(rebalancer.nextDeadline());
  assert.equal(workers[0].shed, given, "the same counts at the next look: nothing");
  counts.set(10, 13);
  rebalancer.advance(rebalancer.nextDeadline());
  assert.equal(workers[0].shed, given + 1, "the counts changed: it tries again");
});

Deno.test("Rebalancer: at most MAX_ROUNDS in a row, then a pause; nothing while a reload runs", () => {
  // Still uneven after MAX_ROUNDS connections moved.
  const counts = new Map([[10, 300], [11, 0]]);
  const { workers, state, rebalancer } = setup(counts);
  rebalancer.advance(0);
  rebalancer.advance(SETTLE_MS); // notes the connections
  let now = rebalancer.nextDeadline();
  for (let round = 0; round < MAX_ROUNDS; round++) {
    rebalancer.advance(now);
    now = rebalancer.nextDeadline();
    // Each connection let go lands on the other worker: the counts move every round.
    counts.set(10, 300 - workers[0].shed).set(11, workers[0].shed);
  }
  assert.equal(workers[0].shed, MAX_ROUNDS);
  rebalancer.advance(now);
  assert.equal(workers[0].shed, MAX_ROUNDS, "out of rounds");
  assert.equal(rebalancer.nextDeadline(), now + CHECK_MS, "a pause, then new rounds");
  state.reloading = true;
  rebalancer.advance(now);
  assert.equal(rebalancer.nextDeadline(), Infinity, "a reload runs: no look is due");
  state.reloading = false;
  rebalancer.advance(now);
  assert.equal(rebalancer.nextDeadline(), now + SETTLE_MS, "after it, the workers' clients settle");
});

Deno.test("Rebalancer: no deadline once the supervisor stops, even before its next look", () => {
  const { rebalancer } = setup(new Map([[10, 12], [11, 4]]));
  rebalancer.advance(0);
  assert.equal(rebalancer.nextDeadline(), SETTLE_MS);
  // The supervisor stops: it calls advance no more, and must not be woken for a past look.
  rebalancer.stop();
  assert.equal(rebalancer.nextDeadline(), Infinity);
});

Deno.test("Rebalancer: one serving worker: nothing to spread, and /proc is not read", () => {
  let reads = 0;
  const rebalancer = new Rebalancer({
    serving: () => [{ pid: 10, shed: () => {} } as unknown as Child],
    connections: () => {
      reads++;
      return { held: lasting(new Map([[10, 16]])), cpuMs: 0 };
    },
  });
  rebalancer.advance(0);
  rebalancer.advance(SETTLE_MS);
  rebalancer.advance(SETTLE_MS + CHECK_MS);
  assert.equal(reads, 0);
  assert.equal(rebalancer.nextDeadline(), SETTLE_MS + 2 * CHECK_MS);
});

Deno.test("Rebalancer: costly counts space the looks by their CPU time: FOLLOW_SHARE of a core while a change's clients are spread, READ_SHARE at the first start and after; one costly count alone does not", () => {
  const counts = new Map([[10, 12], [11, 4]]);
  const { workers, state, rebalancer } = setup(counts);
  state.cpuMs = 25;
  // The first start: its clients arrive as they come, spread at READ_SHARE.
  rebalancer.advance(0);
  rebalancer.advance(SETTLE_MS); // notes the connections
  let at = rebalancer.nextDeadline();
  rebalancer.advance(at);
  assert.deepEqual(workers.map((w) => w.shed), [1, 0], "it lets one go");
  assert.equal(rebalancer.nextDeadline(), at + 25 / READ_SHARE, "at the start: READ_SHARE");
  // A reload: the serving workers change.
  at = 10 * FOLLOW_MS;
  state.reloading = true;
  rebalancer.advance(at);
  state.reloading = false;
  state.epoch++;
  rebalancer.advance(at);
  at += SETTLE_MS;
  rebalancer.advance(at);
  assert.deepEqual(workers.map((w) => w.shed), [1, 0], "every connection is new: noted");
  const following = 25 / FOLLOW_SHARE;
  assert.ok(following > ROUND_MS);
  assert.equal(rebalancer.nextDeadline(), at + following, "following the change: FOLLOW_SHARE");
  at = rebalancer.nextDeadline();
  rebalancer.advance(at);
  assert.deepEqual(workers.map((w) => w.shed), [2, 0], "they lasted: it lets one go again");
  assert.equal(rebalancer.nextDeadline(), at + following, "still FOLLOW_SHARE");
  // A count another thread's work fell into: the spacing goes by the least of the last few.
  state.cpuMs = 400;
  at = rebalancer.nextDeadline();
  rebalancer.advance(at);
  assert.equal(rebalancer.nextDeadline(), at + following, "one costly count alone does not");
  state.cpuMs = 25;
  // Past the follow window, still uneven (the counts moving, so it never gives up): READ_SHARE.
  let round = 0;
  while (rebalancer.nextDeadline() < 11 * FOLLOW_MS) {
    round++;
    counts.set(10, 12 + round).set(11, 4);
    rebalancer.advance(rebalancer.nextDeadline());
  }
  counts.set(10, 12).set(11, 4);
  at = rebalancer.nextDeadline();
  rebalancer.advance(at);
  assert.equal(rebalancer.nextDeadline(), at + 25 / READ_SHARE, "after it: READ_SHARE");
  // Every one of the last five costly: the looks (spread now) wait longer than CHECK_MS.
  state.cpuMs = 400;
  counts.set(10, 8).set(11, 8);
  for (let i = 0; i < 5; i++) {
    at = rebalancer.nextDeadline();
    rebalancer.advance(at);
  }
  assert.ok(400 / READ_SHARE > CHECK_MS);
  assert.equal(rebalancer.nextDeadline(), at + 400 / READ_SHARE);
});
