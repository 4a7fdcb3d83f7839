/**
 * `run --takeover` around the edges: nothing to take over, a second
 * takeover while one is under way, and what commands see meanwhile. The
 * takeover under load, steered and not, is in succession_test.ts.
 */
import assert from "node:assert/strict";
import { Hotreload, runCli, serveArgs, waitFor, withHotreload } from "./helpers.ts";

const APP = `Deno.serve(() => new Response("v1"));\n`;

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
    // New code that takes its time to start: the takeover stays under way.
    const slow = `await new Promise((resolve) => setTimeout(resolve, 60_000));\n${APP}`;
    await Deno.writeTextFile(`${dir}/main.ts`, slow);
    const b = new Hotreload(serveArgs(port, "--takeover"), dir);
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
