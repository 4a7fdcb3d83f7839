/**
 * Warm spares on the fake OS: started up to the number wanted, not while a
 * worker starts, released as workers, discarded for good at a stop, and one
 * that dies on its own replaced after a pause.
 */
import assert from "node:assert/strict";
import { Spares } from "./spares.ts";
import { workerSpec } from "./child_command.ts";
import type { WorkerSettings } from "../runtime/protocol.ts";
import { fakeOptions, FakeWorld, settle } from "./fake_world.ts";

function setup(spares: number, extra: Parameters<typeof fakeOptions>[0] = {}) {
  const world = new FakeWorld();
  const exits: Array<() => void> = [];
  const options = fakeOptions({ spares, ...extra });
  const pool = new Spares({
    ...options,
    spawn: world.spawn,
    clock: world.clock,
    listener: {
      message() {},
      exit: (child, status) => exits.push(() => pool.onExit(child, status)),
    },
  });
  return { world, pool, options, exits };
}

Deno.test("spares: as many as wanted wait, none while a worker starts; a released one is a worker", () => {
  const { world, pool, options } = setup(2);
  pool.topUp(0, true);
  assert.equal(world.children.length, 0, "a worker is starting: no spare now");
  pool.topUp(0, false);
  assert.equal(world.children.length, 2);
  assert.ok(world.children.every((c) => c.spare && c.spec.label === "spare"));
  assert.equal(pool.statusRows(() => undefined, 0).length, 2);
  const worker = pool.release(workerSpec(options, 1, 2));
  assert.equal(worker?.pid, world.children[0].pid, "the oldest spare goes first");
  assert.equal(worker?.spec.label, "worker 1");
  assert.equal(pool.statusRows(() => undefined, 0).length, 1);
  assert.deepEqual(pool.deadlines(), [0], "one missing: due at once");
  pool.topUp(0, false);
  assert.equal(world.children.length, 3);
  assert.deepEqual(pool.deadlines(), []);
});

Deno.test("spares: discarded ones end, new ones follow unless for good", async () => {
  const { world, pool, exits } = setup(1);
  pool.topUp(0, false);
  pool.discard();
  assert.equal(pool.stopping().length, 1, "live until it exits");
  await settle();
  for (const exit of exits.splice(0)) exit();
  assert.equal(pool.stopping().length, 0);
  pool.topUp(0, false);
  assert.equal(world.children.length, 2, "a new one follows");
  pool.discard(true);
  pool.topUp(0, false);
  assert.equal(world.children.length, 2, "stopping: none follows");
  assert.deepEqual(pool.deadlines(), []);
});

Deno.test("spares: one that dies on its own is replaced after a pause", async () => {
  const { world, pool, exits } = setup(1);
  pool.topUp(0, false);
  world.children[0].exit(1);
  await settle();
  assert.equal(exits.length, 1);
  for (const exit of exits.splice(0)) exit();
  const [retryAt] = pool.deadlines();
  assert.ok(retryAt > world.clock.now(), "not at once");
  pool.topUp(world.clock.now(), false);
  assert.equal(world.children.length, 1);
  pool.topUp(retryAt, false);
  assert.equal(world.children.length, 2);
});

Deno.test("spares: none before the time given (after the last worker became ready); the deadline says when", () => {
  const { world, pool } = setup(2);
  pool.topUp(50, false, 100);
  assert.equal(world.children.length, 0, "too early");
  assert.deepEqual(pool.deadlines(), [100], "due when the delay ends");
  pool.topUp(100, false, 100);
  assert.equal(world.children.length, 2);
  assert.deepEqual(pool.deadlines(), []);
});

Deno.test("spares: a released spare's preload removes the malloc tunables as the spare started, whatever a worker started now would get", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/app.env`, "PORT=1\n");
    const { world, pool, options } = setup(2, {
      cwd: dir,
      denoFlags: ["-A", "--env-file=app.env"],
    });
    pool.topUp(0, false);
    assert.ok(world.children.every((c) => c.spec.env.GLIBC_TUNABLES !== undefined), "tuned");
    // The user gives their own: a worker started now would get none of ours.
    await Deno.writeTextFile(`${dir}/app.env`, "GLIBC_TUNABLES=glibc.malloc.arena_max=2\n");
    const now = workerSpec(options, 1, 2);
    assert.equal((now.settings as WorkerSettings).dropMallocTunables, false);
    assert.equal(now.env.GLIBC_TUNABLES, undefined);
    const released = pool.release(now);
    assert.equal((released?.spec.settings as WorkerSettings).dropMallocTunables, true);
    // A spare started now starts without them, and its release says so.
    pool.topUp(0, false);
    const untuned = world.children.at(-1)!;
    assert.equal(untuned.spec.env.GLIBC_TUNABLES, undefined);
    await Deno.writeTextFile(`${dir}/app.env`, "PORT=1\n");
    pool.release(workerSpec(options, 0, 2)); // the older spare
    const last = pool.release(workerSpec(options, 1, 2));
    assert.equal(last?.pid, untuned.pid);
    assert.equal((last?.spec.settings as WorkerSettings).dropMallocTunables, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
