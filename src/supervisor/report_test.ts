/**
 * What the supervisor reports: `status` (rows in every state, the
 * supervisor's own facts from the world), systemd's notify lines (silent
 * while taking over), the watchdog, and the wording of a reload's summary and
 * of an aborted one.
 */
import assert from "node:assert/strict";
import type { StatusReport } from "../control/protocol.ts";
import { fakeOptions, FakeWorld, settle } from "./fake_world.ts";
import { afterAbort, describeChanges, reloadSummary } from "./report.ts";
import { ANSWER_MS } from "./count_asks.ts";
import { COUNT_SIGNAL } from "../runtime/protocol.ts";
import { Supervisor } from "./supervisor.ts";

async function status(world: FakeWorld): Promise<StatusReport> {
  const box = world.ask({ cmd: "status" });
  await settle();
  return (box.reply as { status: StatusReport }).status;
}

Deno.test("report: status shows the supervisor from the world and a row per child in its state", async () => {
  const world = new FakeWorld();
  const options = fakeOptions({ workers: 2, oneStepSwitch: true, spares: 1 });
  const done = new Supervisor(options, world).run();
  await settle();
  let report = await status(world);
  assert.equal(report.supervisor.phase, "starting");
  assert.deepEqual(report.children.map((row) => row.state), ["starting", "starting", "spare"]);
  for (const child of world.workers(1)) child.ready();
  await settle();
  await world.clock.advance(1500);
  report = await status(world);
  assert.equal(report.supervisor.phase, "running");
  assert.equal(report.supervisor.uptimeMs, 1500, "on the world's clock");
  assert.equal(report.supervisor.rssBytes, 50 * 2 ** 20, "the supervisor's memory, from the world");
  assert.deepEqual(report.supervisor.boundPorts, [8000]);
  assert.equal(report.supervisor.handover, "ebpf");
  const ready = report.children.filter((row) => row.state === "ready");
  assert.equal(ready.length, 2);
  assert.deepEqual(ready.map((row) => row.rssBytes), [40 * 2 ** 20, 40 * 2 ** 20]);
  assert.deepEqual(ready.map((row) => row.ports), [[8000], [8000]]);
  // A one-step switch: the replaced workers are held until every new one serves (the spare
  // was released as the first new worker; no new one starts while workers start).
  const reload = world.ask({ cmd: "reload" });
  await settle();
  world.workers(2)[0].ready();
  await settle();
  report = await status(world);
  assert.equal(report.supervisor.reloading, true);
  assert.deepEqual(
    report.children.map((row) => `${row.role} ${row.state} ${row.generation}`).sort(),
    ["worker held 1", "worker held 1", "worker ready 2", "worker starting 2"],
  );
  for (const child of world.workers(2)) if (child.state === "starting") child.ready();
  await settle();
  assert.equal(reload.reply?.ok, true);
  report = await status(world);
  assert.equal(report.supervisor.generation, 2);
  assert.equal(report.supervisor.lastReload?.ok, true);
  assert.equal(report.supervisor.lastReload?.at, new Date(1500).toISOString());
  world.inbox.signal("SIGTERM");
  await settle();
  assert.equal(await done, 0);
});

Deno.test("report: status waits for each serving worker's count, asked now, and no longer than ANSWER_MS", async () => {
  const world = new FakeWorld();
  const done = new Supervisor(fakeOptions({ workers: 2 }), world).run();
  await settle();
  const [first, second] = world.workers(1);
  first.ready();
  second.ready();
  await settle();
  // Served since their last 50 ms report: only asking finds these.
  world.served.set(first.pid, 5).set(second.pid, 2);
  let report = await status(world);
  assert.deepEqual(report.children.map((row) => row.requests), [5, 2]);
  for (const worker of [first, second]) {
    assert.deepEqual(worker.process.signals, [COUNT_SIGNAL], "asked once, by the signal");
  }

  // A worker whose event loop is blocked answers nothing: status waits ANSWER_MS, then shows
  // the count it last had.
  world.countsAnswer = false;
  world.served.set(first.pid, 9);
  const box = world.ask({ cmd: "status" });
  const answer = () => box.reply as { status: StatusReport } | undefined;
  await settle();
  assert.equal(answer(), undefined, "waits for the counts");
  await world.clock.advance(ANSWER_MS - 1);
  assert.equal(answer(), undefined, "still waits");
  await world.clock.advance(1);
  report = answer()!.status;
  assert.deepEqual(report.children.map((row) => row.requests), [5, 2]);

  // One that exits while asked is waited for no more.
  const late = world.ask({ cmd: "status" });
  await settle();
  first.exit(1);
  second.exit(1);
  await settle();
  assert.ok(late.reply?.ok, "answered once every asked worker is gone");
  world.inbox.signal("SIGTERM");
  await settle();
  assert.equal(await done, 0);
});

Deno.test("report: systemd hears READY, RELOADING and STATUS lines, and the watchdog from the loop", async () => {
  const world = new FakeWorld();
  world.notifyToSystemd(1000);
  const done = new Supervisor(fakeOptions({ workers: 1 }), world).run();
  await settle();
  for (const child of world.workers(1)) child.ready();
  await settle();
  assert.ok(world.notified.includes("READY=1"));
  assert.ok(world.notified.includes("STATUS=1 worker ready, generation 1"));
  assert.ok(world.notified.includes(`MAINPID=${Deno.pid}`));
  const watchdogs = () => world.notified.filter((line) => line === "WATCHDOG=1").length;
  const before = watchdogs();
  await world.clock.advance(3000);
  assert.equal(watchdogs() - before, 3, "once a second, as asked");
  world.ask({ cmd: "reload" });
  await settle();
  assert.ok(world.notified.includes("RELOADING=1"));
  assert.ok(world.notified.includes("STATUS=reloading to generation 2"));
  world.workers(2)[0].ready();
  await settle();
  assert.ok(world.notified.some((line) => /^STATUS=reloading \d\/1 \(generation 2\)$/.test(line)));
  world.inbox.signal("SIGTERM");
  await settle();
  assert.equal(await done, 0);
  assert.ok(world.notified.includes("STOPPING=1"));
});

Deno.test("report: a takeover says nothing to systemd until its switch", async () => {
  const world = new FakeWorld();
  world.notifyToSystemd();
  world.takeover = { stopAsked: 0, claimed: 0, exited: () => {} };
  const done = new Supervisor(fakeOptions({ workers: 1, settle: 500 }), world).run();
  await settle();
  world.workers(1)[0].ready();
  await settle();
  assert.deepEqual(world.notified, [], "the old instance speaks for the service meanwhile");
  await world.clock.advance(500);
  assert.deepEqual(world.notified.slice(0, 3), [
    "READY=1",
    "STATUS=1 worker ready, generation 1",
    `MAINPID=${Deno.pid}`,
  ]);
  world.takeover.exited("stopped");
  world.inbox.signal("SIGTERM");
  await settle();
  assert.equal(await done, 0);
});

Deno.test("report: a reload's summary says what happened", () => {
  const request = { reason: "SIGHUP", files: ["a.ts"], workers: true, processes: true };
  const facts = { generation: 3, request, replacing: true, superseded: false, ms: 120 };
  assert.equal(
    reloadSummary(facts, 4, 4, 1),
    "reloaded 4 workers and 1 process in 120 ms (generation 3; 1 file: a.ts)",
  );
  assert.equal(
    reloadSummary({ ...facts, replacing: false }, 2, 2, 0),
    "generation 3 started 2 workers; all ready in 120 ms (1 file: a.ts)",
  );
  assert.equal(
    reloadSummary(facts, 4, 3, 0),
    "generation 3: 3 of 4 workers ready in 120 ms, the others failed and are retried (1 file: a.ts)",
  );
  assert.equal(
    reloadSummary({ ...facts, superseded: true }, 4, 1, 0),
    "generation 3: 1 of 4 workers ready in 120 ms, when a newer change took over from it (1 file: a.ts)",
  );
  assert.equal(
    reloadSummary({ ...facts, request: { ...request, files: [], workers: false } }, 4, 4, 2),
    "reloaded 2 processes in 120 ms (generation 3; SIGHUP)",
  );
  assert.equal(describeChanges(["a", "b"], "changed"), "2 files changed: a, b");
});

Deno.test("report: after an aborted reload, what serves now", () => {
  const base = {
    putBack: false,
    switched: false,
    serving: true,
    watching: true,
    generation: 5,
    summary: "SyntaxError",
  };
  assert.match(afterAbort({ ...base, putBack: true }), /^the old workers, held .* serve again/);
  assert.match(
    afterAbort({ ...base, switched: true }),
    /had drained already .* still up keep serving/,
  );
  assert.match(afterAbort(base), /^the old workers keep serving/);
  assert.equal(
    afterAbort({ ...base, serving: false }),
    "nothing serves: waiting for a change (generation 5 failed: SyntaxError)",
  );
  assert.match(afterAbort({ ...base, serving: false, watching: false }), /"hotreload reload"/);
});
