/**
 * Succession's decisions, in a fake world: a dead supervisor's orphans drain
 * only once ours are ready; an upgrade is refused unless the instance runs,
 * and whoever asked hears how it ended; the record of live workers holds
 * each worker from its spawn; a takeover that cannot take the name ends.
 */
import assert from "node:assert/strict";
import type { StatusReport } from "../control/protocol.ts";
import { fakeOptions, FakeWorld, settle } from "./fake_world.ts";
import { Supervisor } from "./supervisor.ts";

async function started(world: FakeWorld, workers = 2): Promise<{ done: Promise<number> }> {
  const done = new Supervisor(fakeOptions({ workers }), world).run();
  await settle();
  return { done };
}

async function stop(world: FakeWorld, done: Promise<number>): Promise<number> {
  world.inbox.signal("SIGTERM");
  await settle();
  return await done;
}

Deno.test("succession: a dead supervisor's orphans drain once our workers are ready, released first", async () => {
  const world = new FakeWorld();
  const drained: number[] = [];
  world.orphans = {
    supervisor: 77,
    version: "0.0.8",
    count: 2,
    drain: (release) => {
      for (const pid of [501, 502]) {
        release(pid);
        drained.push(pid);
      }
      return 2;
    },
  };
  const { done } = await started(world);
  world.workers(1)[0].ready();
  await settle();
  assert.deepEqual(drained, [], "not while a worker of ours still starts");
  world.workers(1)[1].ready();
  await settle();
  assert.deepEqual(drained, [501, 502]);
  assert.ok(world.journal.includes("release 501 8000"), "their listeners on our ports stop first");
  const box = world.ask({ cmd: "status" });
  await settle();
  const { succeeded } = (box.reply as { status: StatusReport }).status.supervisor;
  assert.deepEqual([succeeded?.pid, succeeded?.version, succeeded?.workers], [77, "0.0.8", 2]);
  assert.equal(await stop(world, done), 0);
});

Deno.test("succession: the record of live workers holds each worker from its spawn, and follows the set", async () => {
  const world = new FakeWorld();
  const records: number[][] = [];
  world.recordWorkers = (pids) => void records.push(pids);
  const { done } = await started(world);
  assert.deepEqual(records, [world.workers().map((c) => c.pid)], "before any is ready");
  for (const child of world.workers(1)) child.ready();
  await settle();
  assert.equal(records.length, 1, "written when the set changes only");
  world.ask({ cmd: "scale", workers: 3 });
  await settle();
  assert.equal(records.at(-1)?.length, 3);
  assert.equal(await stop(world, done), 0);
  assert.deepEqual(records.at(-1), []);
});

Deno.test("succession: an upgrade is refused while starting, and when one is under way", async () => {
  const world = new FakeWorld();
  let spawned = 0;
  world.spawnSuccessor = () => {
    spawned++;
    return { pid: 900, argv: ["hotreload", "run", "--takeover"], exited: new Promise(() => {}) };
  };
  const { done } = await started(world);
  const early = world.ask({ cmd: "upgrade" });
  await settle();
  assert.deepEqual(early.reply, {
    ok: false,
    error: "the instance is still starting; upgrade it once it is ready",
    kind: "failure",
  });
  for (const child of world.workers(1)) child.ready();
  await settle();
  const first = world.ask({ cmd: "upgrade" });
  const second = world.ask({ cmd: "upgrade" });
  await settle();
  assert.equal(first.reply, undefined, "it waits for the successor");
  assert.match((second.reply as { error: string }).error, /an upgrade is under way \(.*pid 900\)/);
  assert.equal(spawned, 1);
  // The successor has taken over: it asks us to stop, naming itself.
  world.ask({ cmd: "stop", successor: 900 });
  await settle();
  assert.deepEqual(first.reply, { ok: true, message: "taken over by supervisor pid 900" });
  assert.equal(await done, 0);
});

Deno.test("succession: a successor that exits before it took over is said to whoever asked; we serve on", async () => {
  const world = new FakeWorld();
  let exit!: (status: Deno.CommandStatus) => void;
  world.spawnSuccessor = () => ({
    pid: 901,
    argv: ["hotreload"],
    exited: new Promise((resolve) => exit = resolve),
  });
  const { done } = await started(world);
  for (const child of world.workers(1)) child.ready();
  await settle();
  const asked = world.ask({ cmd: "upgrade" });
  await settle();
  exit({ success: false, code: 1, signal: null });
  await settle();
  assert.match(
    (asked.reply as { error: string }).error,
    /^the new supervisor \(pid 901\) exited with exit code 1 before it took over; "test" .* keeps serving/,
  );
  assert.equal(world.workers(1).length, 2, "nothing changed here");
  assert.equal(await stop(world, done), 0);
});

Deno.test("succession: a takeover whose predecessor is gone but whose name cannot be taken ends with exit 1", async () => {
  const world = new FakeWorld();
  world.takeover = { stopAsked: 0, claimed: 0, exited: () => {} };
  const done = new Supervisor(fakeOptions({ workers: 1, settle: 100 }), world).run();
  await settle();
  world.workers(1)[0].ready();
  await settle();
  await world.clock.advance(100);
  assert.equal(world.takeover.stopAsked, 1);
  const connection = world.connection!;
  connection.takeover!.claim = () => {
    throw new Error("the lock is held");
  };
  world.takeover.exited("stopped");
  await settle();
  assert.equal(await done, 1);
  assert.deepEqual(world.workers(), []);
});
