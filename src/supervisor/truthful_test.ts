/**
 * What the log says is what happened, on the fake world (fake_world.ts):
 * a crash that hits every worker shows one stack and a count; a generation
 * that failed to start says so; an old worker replaced by new code restarts
 * "now", never "in 0 ms (failure 0)"; spares follow `scale`. The log's
 * lines are read from the output buffer, where the supervisor prints them.
 */
import assert from "node:assert/strict";
import { Supervisor, type SupervisorOptions } from "./supervisor.ts";
import { SPARE_DELAY_MS } from "./spares.ts";
import { fakeOptions, FakeWorld, settle, startedAll } from "./fake_world.ts";
import { supervisorOutput } from "../log/output_buffer.ts";
import { setupLogging } from "../log/mod.ts";

setupLogging();

/** The lines printed from now on. */
function printed(): () => string[] {
  const lines: string[] = [];
  const stop = supervisorOutput.subscribe((line) => lines.push(line));
  return () => {
    stop();
    return lines;
  };
}

async function started(workers: number, extra: Partial<SupervisorOptions> = {}) {
  const world = new FakeWorld();
  const done = new Supervisor({ ...fakeOptions(extra), workers }, world).run();
  await settle();
  for (const child of world.workers(1)) child.ready();
  await settle();
  return { world, done };
}

async function stop(world: FakeWorld, done: Promise<number>): Promise<void> {
  world.inbox.signal("SIGQUIT");
  await settle();
  assert.equal(await done, 0);
}

Deno.test("a crash that hits 4 serving workers: its stack once, then a count", async () => {
  const { world, done } = await started(4);
  const lines = printed();
  for (const child of world.workers(1)) {
    child.process.print("error: Uncaught Error: boom", "stderr");
    child.process.print("    at file:///app/main.ts:2:9", "stderr");
    child.exit(1);
    await settle();
  }
  const out = lines();
  assert.equal(
    out.filter((l) => l.endsWith("] error: Uncaught Error: boom")).length,
    1,
    out.join("\n"),
  );
  assert.equal(out.filter((l) => l.endsWith("]     at file:///app/main.ts:2:9")).length, 1);
  for (const n of [2, 3, 4]) {
    assert.ok(
      out.some((l) => l.includes(`failed the same way (${n} workers of generation 1 so far)`)),
    );
  }
  await stop(world, done);
});

Deno.test("hotreload's own frames are not shown in an app's stack", async () => {
  const { world, done } = await started(1);
  const lines = printed();
  const [child] = world.workers(1);
  child.process.print("error: Uncaught Error: boom", "stderr");
  child.process.print("    at Server.emit (file:///nonexistent/node_servers.ts:385:32)", "stderr");
  child.process.print("    at file:///app/main.ts:2:9", "stderr");
  child.exit(1);
  await settle();
  const out = lines().join("\n");
  assert.match(out, /at file:\/\/\/app\/main\.ts:2:9/);
  assert.doesNotMatch(out, /node_servers/);
  await stop(world, done);
});

Deno.test("a generation that failed to start: its other workers 'were stopped', not drained", async () => {
  const { world, done } = await started(2, { oneStepSwitch: true });
  const lines = printed();
  world.ask({ cmd: "reload" });
  await startedAll(world);
  const [failing, other] = world.workers(2);
  failing.exit(1);
  await settle();
  other.exit(0);
  await settle();
  const out = lines().join("\n");
  assert.match(out, /reload aborted/);
  assert.match(out, /of generation 2, which failed to start, was stopped/);
  assert.doesNotMatch(out, /after draining/);
  await stop(world, done);
});

Deno.test("an old worker that crashes once new code is rolling out restarts now, not 'in 0 ms (failure 0)'", async () => {
  const { world, done } = await started(2);
  world.ask({ cmd: "reload" });
  await settle();
  const lines = printed();
  const [old] = world.workers(1).filter((c) => c.state === "ready");
  old.exit(1);
  await settle();
  const out = lines().join("\n");
  assert.doesNotMatch(out, /in 0 ms|failure 0/, out);
  assert.match(out, /exited with exit code 1 after \d+ ms; restarting now$/m, out);
  await stop(world, done);
});

Deno.test("with --spares auto, spares follow scale", async () => {
  const { world, done } = await started(2, { spares: 2, sparesFollow: true });
  const spares = () => world.children.filter((c) => c.spare && c.state !== "exited").length;
  assert.equal(spares(), 2);
  world.ask({ cmd: "scale", workers: 1 });
  await settle();
  assert.equal(spares(), 1, "a surplus spare ends at once");
  world.ask({ cmd: "scale", workers: 3 });
  await settle();
  for (const child of world.workers(1)) if (child.state === "starting") child.ready();
  await settle();
  await world.clock.advance(SPARE_DELAY_MS);
  assert.equal(spares(), 3);
  await stop(world, done);
});

Deno.test("a worker that prints 'error: Uncaught' and lives on: its lines are shown once it says anything", async () => {
  const { world, done } = await started(1);
  const lines = printed();
  const [child] = world.workers(1);
  child.process.print("error: Uncaught (in my app's words)", "stderr");
  child.process.print("still here", "stderr");
  await settle();
  assert.deepEqual(lines().length, 0, "held while it may be crashing");
  const more = printed();
  child.frame({ t: "alive" });
  await settle();
  const out = more().join("\n");
  assert.match(out, /error: Uncaught \(in my app's words\)\n.*still here/);
  await stop(world, done);
});
