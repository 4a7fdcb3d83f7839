/**
 * `run --takeover` around the edges: nothing to take over, a second
 * takeover while one is under way, and what commands see meanwhile. The
 * takeover under load, steered and not, is in succession_test.ts.
 */
import assert from "node:assert/strict";
import {
  Hotreload,
  httpGet,
  runCli,
  serveArgs,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";

const APP = `Deno.serve(() => new Response("v1"));\n`;

/** A `run --takeover` of code that takes a minute to start: a takeover that stays under way. */
async function slowTakeover(dir: string, port: number): Promise<Hotreload> {
  const slow = `await new Promise((resolve) => setTimeout(resolve, 60_000));\n${APP}`;
  await Deno.writeTextFile(`${dir}/main.ts`, slow);
  return new Hotreload(serveArgs(port, "--takeover"), dir);
}

Deno.test("run --takeover with no instance of that name running: it says so and starts", () =>
  withHotreload(
    { "main.ts": APP },
    (port) => serveArgs(port, "--takeover"),
    async (run, { dir }) => {
      await run.waitForOutput(
        /no instance named "main" runs here: nothing to take over; starting it/,
      );
      await run.waitForReady(1);
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      assert.equal(status.supervisor.pid, run.pid);
      assert.equal(status.supervisor.tookOver, null);
    },
  ));

Deno.test("a second takeover while one is under way is refused; commands reach the running instance until the switch", () =>
  withHotreload({ "main.ts": APP }, (port) => serveArgs(port), async (a, { dir, port }) => {
    await a.waitForReady(1);
    const b = await slowTakeover(dir, port);
    try {
      await b.waitForOutput(/taking over "main" \(supervisor pid \d+, hotreload [\w.+-]+\)/);
      await waitFor(() => b.output.has(/starting 1 worker/), "B starts its worker");
      const second = await runCli(serveArgs(port, "--takeover"), dir);
      assert.equal(second.code, 1, second.stderr);
      assert.match(second.stderr, /a takeover of "main" is already under way here; wait for it/);
      assert.equal(second.stderr.trim().split("\n").length, 1, "one line");
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      assert.equal(status.supervisor.pid, a.pid, "status answers from the running instance");
      assert.ok(!a.output.has("stopping"), "the running instance was not told anything");
    } finally {
      await b.cleanup();
    }
    assert.ok(!a.output.has("stopping"), "a takeover stopped before its switch leaves A alone");
    const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
    assert.equal(status.supervisor.pid, a.pid);
  }));

Deno.test("hotreload upgrade: the supervisor starts its successor (run --takeover, other arguments), which takes over; one whose code cannot start leaves it serving, exit 1", () =>
  withHotreload({ "main.ts": APP }, (port) => serveArgs(port), async (a, { dir, port }) => {
    await a.waitForReady(1);
    await Deno.writeTextFile(`${dir}/main.ts`, APP.replace("v1", "v2"));
    const runArgs = ["main.ts", "-N", "--no-watch", "--port", String(port), "-w", "2"];
    const upgraded = await runCli(["upgrade", "--", ...runArgs], dir);
    assert.equal(upgraded.code, 0, upgraded.stderr);
    const match = upgraded.stderr.match(/"main" upgraded: taken over by supervisor pid (\d+); /);
    assert.ok(match, upgraded.stderr);
    const b = Number(match[1]);
    // The successor shares A's output, so A's pipes stay open: wait for A's process alone.
    await a.process.status;
    assert.equal((await httpGet(port)).body, "v2");
    const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
    assert.deepEqual([status.supervisor.pid, status.supervisor.tookOver?.pid], [b, a.pid]);
    assert.equal(
      status.children.filter((row: { role: string }) => row.role === "worker").length,
      2,
    );

    // The successor upgrades in turn, with its own arguments; this code cannot start.
    await Deno.writeTextFile(`${dir}/main.ts`, `throw new Error("cannot start");\n`);
    const failed = await runCli(["upgrade"], dir);
    assert.equal(failed.code, 1);
    assert.match(
      failed.stderr,
      new RegExp(
        `exited with exit code 1 before it took over; "main" \\(pid ${b}\\) keeps serving`,
      ),
    );
    assert.equal((await httpGet(port)).body, "v2");
    assert.match(
      a.output.text(),
      /takeover aborted: worker \d+ exited with exit code 1: Error: cannot start/,
    );

    // Arguments that could not work are refused before anything starts.
    for (
      const [args, error] of [
        [["main.ts", "--name", "other"], /name the instance "other", not "main": add --name main/],
        [["main.ts", "--workers", "many"], /--workers must be a whole number/],
      ] as const
    ) {
      const refused = await runCli(["upgrade", "--", ...args], dir);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, error);
    }
    assert.equal((await runCli(["stop"], dir)).code, 0);
    await waitFor(() => taggedPids(a.tag).length === 0, "the successor and its workers gone");
  }));

Deno.test("a takeover whose predecessor dies meanwhile still takes the name, and drains the workers it left serving", () =>
  withHotreload(
    { "main.ts": APP },
    (port) => serveArgs(port, "--orphan-grace", "30000"),
    async (a, { dir, port }) => {
      await a.waitForReady(1);
      const orphans = taggedPids(a.tag).filter((pid) => pid !== a.pid);
      // New code that takes a moment to start: A dies while the takeover waits for it.
      const slow = `await new Promise((resolve) => setTimeout(resolve, 1500));\n${APP}`;
      await Deno.writeTextFile(`${dir}/main.ts`, slow.replace("v1", "v2"));
      const b = new Hotreload(serveArgs(port, "--takeover"), dir);
      try {
        await b.waitForOutput(/starting 1 worker/);
        a.signal("SIGKILL");
        await b.waitForOutput(
          /took over "main" from pid \d+ \(hotreload [\w.+-]+\): it had exited meanwhile, .*; its 1 worker\(s\) left serving drain now/,
        );
        // Well within --orphan-grace (30 s): drained by B, not by their own timer.
        await waitFor(
          () => orphans.every((pid) => !taggedPids(a.tag).includes(pid)),
          "A's orphaned worker gone",
          10_000,
        );
        assert.equal((await httpGet(port)).body, "v2");
        const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
        assert.equal(status.supervisor.pid, b.pid);
      } finally {
        await b.cleanup();
      }
    },
  ));

Deno.test("steered: until the switch, every new connection goes to the old instance; the new supervisor's program replaces the old one only then", () =>
  withHotreload(
    { "main.ts": APP },
    (port) => serveArgs(port, "--handover", "ebpf"),
    async (a, { dir, port }) => {
      await a.waitForReady(1);
      await Deno.writeTextFile(`${dir}/main.ts`, APP.replace("v1", "v2"));
      // A long settle window: B's workers are bound and ready, yet must get nothing.
      const b = new Hotreload(
        serveArgs(port, "--takeover", "--handover", "ebpf", "-w", "2", "--settle", "3000"),
        dir,
      );
      try {
        await b.waitForOutput(/taking over pid \d+ once the workers have run for 3000 ms/);
        const bodies = new Set<string>();
        for (let i = 0; i < 40; i++) {
          if (b.output.has("stopping the old instance")) break;
          // A new connection each time: the reuseport group picks a listener for each.
          bodies.add((await httpGet(port)).body);
        }
        assert.ok(!b.output.has("stopping the old instance"), "the requests ran before the switch");
        assert.deepEqual([...bodies], ["v1"], "only the old instance answered");
        await b.waitForOutput(/took over "main"/);
        assert.equal((await httpGet(port)).body, "v2");
      } finally {
        await b.cleanup();
      }
    },
  ));

Deno.test("a takeover killed with SIGKILL leaves its lock and socket; they go with the stale record", () =>
  withHotreload({ "main.ts": APP }, (port) => serveArgs(port), async (a, { dir, port }) => {
    await a.waitForReady(1);
    const b = await slowTakeover(dir, port);
    try {
      await b.waitForOutput(/starting 1 worker/);
      b.signal("SIGKILL");
      await b.status;
      const instance = `${dir}/.hotreload/main`;
      for (const file of ["takeover.lock", "takeover.sock"]) {
        const left = await Deno.lstat(`${instance}/${file}`).then(() => true, () => false);
        assert.ok(left, `the killed takeover left ${file}`);
      }
      a.signal("SIGKILL");
      await a.process.status;
      // Orphans end on their own (--orphan-grace, 1 s): A's worker, and B's, whose supervisor
      // died while it was starting (it knows its supervisor's pid from the handshake).
      await waitFor(
        () => taggedPids(a.tag).length + taggedPids(b.tag).length === 0,
        "every orphan gone",
        15_000,
      );
      const status = await runCli(["status"], dir);
      assert.equal(status.code, 3, status.stderr);
      assert.match(status.stderr, /removed the stale record of "main" \(pid \d+ is gone\)/);
      await assert.rejects(() => Deno.lstat(`${dir}/.hotreload`), "nothing is left");
    } finally {
      await b.cleanup();
    }
  }));
