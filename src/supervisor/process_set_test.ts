/**
 * The custom processes' restart policy, on real ManagedChilds over a fake OS
 * (fake_world.ts): what each policy does with a crash and a clean exit, the
 * backoff, warm restarts one instance at a time, a hung process, a stop.
 */
import assert from "node:assert/strict";
import type { Child } from "../child/child.ts";
import type { ProcessConfig } from "../config/mod.ts";
import { fakeOptions, FakeWorld, settle } from "./fake_world.ts";
import { ProcessSet } from "./process_set.ts";

/** A process set in a fake world, pumped as the supervisor's loop would. */
function harness(processes: Partial<ProcessConfig>[], timeout = 0) {
  const world = new FakeWorld();
  const configs = processes.map((p, i) => ({
    name: `job${i}`,
    entry: "job.ts",
    count: 1,
    args: {},
    restart: "always" as const,
    reload: true,
    grace: 1000,
    ...p,
  }));
  const set: ProcessSet = new ProcessSet({
    ...fakeOptions({ processes: configs, timeout }),
    spawn: world.spawn,
    clock: world.clock,
    listener: {
      message: (child: Child, message) => {
        if (message.t === "ready") set.onReady(child);
        if (message.t === "restart-requested") set.onRestartRequested(child);
      },
      exit: (child: Child, status) => set.onExit(child, status),
    },
  });
  /** One pass of the loop: deadlines, starts, the warm-restart queue. */
  const pass = async () => {
    await settle();
    const now = world.clock.now();
    set.enforceDeadlines(now);
    set.fill(now, 1);
    set.advanceRestarts();
    await settle();
  };
  /** Moves the clock by `ms`, then one pass. */
  const wait = async (ms: number) => {
    await world.clock.advance(ms);
    await pass();
  };
  const live = () => world.children.filter((c) => c.state !== "exited");
  const rows = () => set.statusRows(() => undefined).map((row) => row.state);
  return { world, set, pass, wait, live, rows };
}

Deno.test("process set, restart always: a crash restarts after the backoff, doubling; a clean exit restarts too", async () => {
  const { world, pass, wait, live } = harness([{ restart: "always" }]);
  await pass();
  const starts = () => world.children.length;
  assert.equal(starts(), 1);
  live()[0].ready();
  live()[0].exit(1);
  await pass();
  assert.equal(starts(), 1, "not at once: the backoff");
  await wait(100);
  assert.equal(starts(), 2, "after 100 ms");
  live()[0].exit(1);
  await pass();
  await wait(190);
  assert.equal(starts(), 2, "the second time, 200 ms");
  await wait(20);
  assert.equal(starts(), 3);
  live()[0].exit(0);
  await pass();
  await wait(500);
  assert.equal(starts(), 4, "always: a clean exit is restarted as well");
});

Deno.test("process set, restart on-failure: a clean exit stays down, a crash restarts", async () => {
  const { world, pass, wait, live, rows } = harness([{ restart: "on-failure" }, {
    restart: "on-failure",
  }]);
  await pass();
  const [first, second] = live();
  first.exit(0);
  second.exit(3);
  await pass();
  await wait(200);
  assert.equal(world.children.length, 3, "only the crashed one started again");
  assert.deepEqual(rows(), ["stopped", "starting"]);
});

Deno.test("process set, restart never: any exit stays down until a restart asks for it", async () => {
  const { world, set, pass, wait, live, rows } = harness([{ restart: "never" }]);
  await pass();
  live()[0].exit(1);
  await pass();
  await wait(1000);
  assert.equal(world.children.length, 1);
  assert.deepEqual(rows(), ["stopped"]);
  assert.equal(set.queueRestart(() => true), 1);
  await pass();
  await pass();
  assert.equal(world.children.length, 2, "a restart starts it again");
});

Deno.test("process set: a process that asks for a restart (SIGTERM from outside) starts again at once", async () => {
  const { world, pass, live } = harness([{}]);
  await pass();
  const first = live()[0];
  first.ready();
  first.frame({ t: "restart-requested" });
  await settle();
  first.exit(0);
  await pass();
  assert.equal(world.children.length, 2, "no backoff");
});

Deno.test("process set: warm restarts go one instance at a time, each started before the next stops", async () => {
  const { world, set, pass, live } = harness([{ count: 2 }]);
  await pass();
  for (const child of live()) child.ready();
  await pass();
  const [a, b] = live();
  assert.equal(set.queueRestart(() => true), 2);
  assert.ok(set.restarting());
  await pass();
  assert.deepEqual(
    a.process.signals,
    ["SIGINT"],
    "the first is asked to stop (its onShutdown runs)",
  );
  assert.deepEqual(b.process.signals, [], "the second waits");
  await pass();
  const a2 = live().find((c) => c !== b)!;
  assert.notEqual(a2, a, "started again");
  await pass();
  assert.deepEqual(b.process.signals, [], "not before the new one has started");
  a2.ready();
  await pass();
  await pass();
  assert.deepEqual(b.process.signals, ["SIGINT"]);
  await pass();
  live().find((c) => c !== a2)!.ready();
  await pass();
  assert.ok(!set.restarting());
  assert.equal(world.children.length, 4);
});

Deno.test("process set: a hung process (silent for --timeout) is killed and started again at once", async () => {
  const { world, pass, wait, live } = harness([{}], 300);
  await pass();
  live()[0].ready();
  await pass();
  await wait(310);
  assert.equal(world.children[0].process.signals.at(-1), "-SIGKILL", "its group is killed");
  await pass();
  assert.equal(world.children.length, 2, "and it starts again without a backoff");
});

Deno.test("process set: a stop drains every instance and none comes back", async () => {
  const { world, set, pass, wait, live, rows } = harness([{ count: 2, restart: "always" }]);
  await pass();
  for (const child of live()) child.ready();
  await pass();
  set.drainAll();
  await pass();
  await wait(1000);
  assert.deepEqual(live(), []);
  assert.equal(world.children.length, 2);
  assert.deepEqual(rows(), ["stopped", "stopped"]);
});
