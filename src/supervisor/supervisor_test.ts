/**
 * The supervisor's core, driven without the operating system: a fake world
 * (fake_world.ts) whose children are real ManagedChilds on a fake OS that the
 * test makes ready, crash or exit, and whose clock moves only when the test
 * advances it. No process is started.
 */
import assert from "node:assert/strict";
import type { StatusReport } from "../control/protocol.ts";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import { SPARE_DELAY_MS } from "./spares.ts";
import { type FakeChild, fakeOptions, FakeWorld, settle, startedAll } from "./fake_world.ts";

const options = fakeOptions;

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
  await startedAll(world);
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
  old.frame({ t: "recycle", reason: "served 10 requests (--max-requests)" });
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

Deno.test("core: a broken env file refuses a reload before anything starts; the generation stays", async () => {
  let envError: string | undefined = ".env:3: expected KEY=VALUE";
  const { world, done } = await started(2, { checkEnv: () => envError });
  const asked = world.ask({ cmd: "reload" });
  await settle();
  assert.deepEqual(asked.reply, {
    ok: false,
    error: "reload aborted: .env:3: expected KEY=VALUE",
    kind: "failure",
  });
  assert.equal(world.children.length, 2, "no new worker started");
  envError = undefined;
  world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(2).length, 1, "once fixed, the next reload is generation 2");
  assert.equal(await stop(world, done), 0);
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

Deno.test("core: one-step switch: the lead starts, the others once it listens; the first ready takes over, the others join", async () => {
  const { world, done } = await started(3, { oneStepSwitch: true });
  const asked = world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(2).length, 1, "the lead starts alone");
  world.workers(2)[0].listen();
  await settle();
  assert.equal(world.workers(2).length, 3, "it listens: every other new worker starts");
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

Deno.test("core: a new worker that dies within the settle window puts the held ones back: steered again, the other new one drains; a recycle then takes over", async () => {
  const { world, done } = await started(2, { oneStepSwitch: true, settle: 1000 });
  const old = world.workers(1).map((c) => c.pid).toSorted();
  const asked = world.ask({ cmd: "reload" });
  await startedAll(world);
  const [first, second] = world.workers(2);
  first.ready();
  second.ready();
  await settle();
  assert.deepEqual(world.steered.toSorted(), [first.pid, second.pid].toSorted(), "switched");
  world.journal.length = 0;
  first.exit(null, "SIGKILL");
  await settle();
  assert.equal(asked.reply?.ok, false, "the reload is aborted");
  assert.deepEqual(world.steered.toSorted(), old, "the old generation is steered to again");
  assert.deepEqual(world.journal, [`release ${second.pid} 8000`, `drain ${second.pid}`]);
  assert.deepEqual(world.workers(2), [], "no new worker is left serving beside them");
  // A recycle now starts the code on disk (generation 2's): with no reload running to promote
  // it, it takes over its slot once ready, as a crashed slot's restart would.
  const [recycled] = world.workers(1);
  recycled.frame({ t: "recycle", reason: "served 10 requests (--max-requests)" });
  await world.clock.advance(1000); // past the backoff the crash started in slot 0
  const [replacement] = world.workers(2);
  replacement.ready();
  await settle();
  assert.ok(world.steered.includes(replacement.pid), "the recycle's replacement serves");
  assert.ok(!world.workers().includes(recycled), "its predecessor drained");
  assert.equal(world.workers().length, 2);
  assert.deepEqual(world.drainedWhileSteered, []);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a recycle during a reload of the custom processes only takes over; the next reload runs", async () => {
  const consumer = { name: "consumer", entry: "consumer.ts", count: 1, args: {} };
  const processes = [{ ...consumer, restart: "always" as const, reload: true, grace: 1000 }];
  const { world, done } = await started(1, { processes });
  const live = () =>
    world.children.filter((c) => c.spec.role === "process" && c.state !== "exited");
  for (const process of live()) process.ready();
  await settle();
  // SIGUSR2 reloads the custom processes alone (a new generation); the consumer takes its time.
  world.drainsAtOnce = false;
  world.inbox.signal("SIGUSR2");
  await settle();
  const [worker] = world.workers(1);
  worker.frame({ t: "recycle", reason: "served 10 requests (--max-requests)" });
  await settle();
  const [replacement] = world.workers(2);
  replacement.ready();
  await settle();
  assert.deepEqual(
    world.steered,
    [replacement.pid],
    "no worker rollout runs to promote it: it serves",
  );
  assert.equal(worker.state, "draining");
  worker.exit(0);
  for (const process of live()) process.exit(0);
  await settle();
  for (const process of live()) process.ready();
  world.drainsAtOnce = true;
  await settle();
  const asked = world.ask({ cmd: "reload" });
  await settle();
  assert.equal(world.workers(3).length, 1, "the next reload starts its worker");
  world.workers(3)[0].ready();
  await settle();
  for (const process of live()) process.ready(); // it reloads the consumer too
  await settle();
  assert.equal(asked.reply?.ok, true);
  assert.equal(await stop(world, done), 0);
});

Deno.test("core: a worker told to leave before it listened has its listener released once it does", async () => {
  const world = new FakeWorld();
  world.handoverMode = "kernel";
  world.drainsAtOnce = false;
  const supervisor = new Supervisor({ ...options(), workers: 2 }, world);
  const done = supervisor.run();
  await settle();
  for (const child of world.workers(1)) child.ready();
  await settle();
  world.ask({ cmd: "scale", workers: 3 });
  await settle();
  const late = world.workers().find((c) => c.state === "starting")!;
  world.ask({ cmd: "scale", workers: 2 });
  await settle();
  assert.deepEqual(world.journal, [`drain ${late.pid}`], "told to drain while starting");
  // Its entry calls Deno.serve only now: without steering, the kernel gives it connections.
  late.frame({ t: "listening", port: 8000, releasable: true });
  await settle();
  assert.deepEqual(world.journal, [`drain ${late.pid}`, `release ${late.pid} 8000`]);
  late.exit(0);
  await settle();
  world.drainsAtOnce = true;
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
  assert.equal(spares().length, 0, "none while the new workers answer their first requests");
  await world.clock.advance(SPARE_DELAY_MS);
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
  await startedAll(world);
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

for (
  const [what, extra, spreads] of [
    ["by default", {}, true],
    ["not with --no-rebalance", { rebalance: false }, false],
    ["not with --sticky (a client reconnects to the worker it left)", { sticky: true }, false],
  ] as const
) {
  Deno.test(`core: keep-alive clients are spread over the workers ${what}`, async () => {
    const { world, done } = await started(2, extra);
    let counted = 0;
    // Every connection on the first worker, lasting: it is asked to let one go at each look.
    world.connections = (pids) => {
      counted++;
      return new Map(pids.map((pid, i) => [pid, i === 0 ? ["1", "2", "3", "4", "5", "6"] : []]));
    };
    // Two looks at least: the first only notes the connections (rebalance.ts).
    await world.clock.advance(3000);
    const sheds = world.workers(1).flatMap((child) => child.process.signals)
      .filter((signal) => signal === "SIGCONT");
    assert.equal(counted > 0, spreads, `connections counted ${counted} times`);
    assert.equal(sheds.length > 0, spreads, `${sheds.length} connections let go`);
    assert.equal(await stop(world, done), 0);
  });
}

Deno.test("core: a new worker not ready within --ready-timeout aborts the reload, and its line says so once", async () => {
  const { world, done } = await started(1);
  const asked = world.ask({ cmd: "reload" });
  await settle();
  const [late] = world.workers(2);
  await world.clock.advance(10_000);
  if (late.state !== "exited") late.exit(null, "SIGKILL");
  await settle();
  assert.equal(asked.reply?.ok, false);
  const error = (asked.reply as { error: string }).error;
  assert.match(error, /^reload aborted: worker 0 of generation 2 was not ready within 10000 ms/);
  assert.doesNotMatch(error, /before it was ready/, "the timeout says when already");
  assert.equal(world.workers(1).length, 1, "the old worker serves on");
  assert.equal(await stop(world, done), 0);
});
