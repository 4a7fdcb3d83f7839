/**
 * End-to-end: the log says what happened. A crash that hits every worker
 * shows its stack once, with the count of workers it hit; a generation that
 * failed to start says so; `status` counts the requests served up to when
 * it is asked.
 */
import assert from "node:assert/strict";
import { httpGet, runCli, waitFor, watchingArgs, withHotreload } from "./helpers.ts";
import type { StatusReport } from "../src/control/protocol.ts";

const CRASHES = `Deno.serve((_req) => new Response("ok"));
setTimeout(() => { throw new Error("crash after ready"); }, 1000);
`;

Deno.test("a crash that hits 4 workers shows one stack and counts the workers", async () => {
  await withHotreload(
    { "main.ts": CRASHES },
    (port) => watchingArgs(port, "-w", "4"),
    async (run) => {
      await run.waitForOutput(/failed the same way \(4 workers of generation 1 so far\)/);
      const stacks = run.output.lines.filter((line) =>
        /^\[worker \d \d+\] error: Uncaught Error: crash after ready$/.test(line)
      );
      assert.equal(stacks.length, 1, run.output.text());
      const frames = run.output.lines.filter((line) =>
        /^\[worker \d \d+\]\s+at .*main\.ts:2/.test(line)
      );
      assert.equal(frames.length, 1, run.output.text());
      for (const n of [2, 3]) {
        assert.ok(run.output.has(`(${n} workers of generation 1 so far)`), run.output.text());
      }
      assert.ok(!run.output.has(/restarting in 0 ms|\(failure 0\)/), run.output.text());
    },
  );
});

Deno.test("a reload whose generation fails to start says so, not 'after draining'", async () => {
  // Worker 0 of the broken generation fails only once worker 1 has started (a file outside the
  // watched project says so): steered, worker 0 starts first, and a lead that fails at once ends
  // the reload before the others start, with no worker 1 of generation 2 to tell of.
  const marks = await Deno.makeTempDir({ prefix: "hotreload-marks-" });
  const started = JSON.stringify(`${marks}/worker-1-started`);
  try {
    await withHotreload(
      { "main.ts": `Deno.serve((_req) => new Response("v1"));\n` },
      (port) =>
        watchingArgs(
          port,
          "-w",
          "2",
          "--allow-env=HOTRELOAD_WORKER_ID",
          `--allow-read=${marks}`,
          `--allow-write=${marks}`,
        ),
      async (run, { dir }) => {
        await run.waitForOutput("2 worker(s) ready");
        // One worker of the new generation fails; the other is stopped before it is ready.
        await Deno.writeTextFile(
          `${dir}/main.ts`,
          `if (Deno.env.get("HOTRELOAD_WORKER_ID") === "0") {\n` +
            `  const deadline = Date.now() + 15000;\n` +
            `  while (Date.now() < deadline) {\n` +
            `    try { Deno.statSync(${started}); break; } catch { await new Promise((r) => setTimeout(r, 10)); }\n` +
            `  }\n` +
            `  throw new Error("v2 cannot start");\n` +
            `}\n` +
            `Deno.writeTextFileSync(${started}, "");\n` +
            `await new Promise((r) => setTimeout(r, 3000));\nDeno.serve((_req) => new Response("v2"));\n`,
        );
        await run.waitForOutput("reload aborted");
        await run.waitForOutput(
          /worker 1 \(pid \d+\) of generation 2, which failed to start, was stopped/,
        );
        assert.ok(!run.output.has(/generation 2.*after draining/), run.output.text());
        const drained = run.output.lines.filter((line) => /exited after draining/.test(line));
        assert.deepEqual(drained, [], run.output.text());
      },
    );
  } finally {
    await Deno.remove(marks, { recursive: true });
  }
});

Deno.test("status counts the requests served before it was asked", async () => {
  await withHotreload(
    { "main.ts": `Deno.serve((_req) => new Response("ok"));\n` },
    (port) => watchingArgs(port, "-w", "2"),
    async (run, { dir, port }) => {
      await run.waitForOutput("2 worker(s) ready");
      for (let i = 0; i < 7; i++) assert.equal((await httpGet(port)).status, 200);
      const result = await runCli(["status", "--json"], dir);
      assert.equal(result.code, 0, result.stderr);
      const report = JSON.parse(result.stdout) as StatusReport;
      const served = report.children.reduce((n, row) => n + (row.requests ?? 0), 0);
      assert.equal(served, 7, result.stdout);
      // And the count goes on as requests come.
      assert.equal((await httpGet(port)).status, 200);
      await waitFor(async () => {
        const again = JSON.parse((await runCli(["status", "--json"], dir)).stdout) as StatusReport;
        return again.children.reduce((n, row) => n + (row.requests ?? 0), 0) === 8;
      }, "8 requests counted");
    },
  );
});

Deno.test("status answers while a worker's event loop is blocked, with the count it last told", async () => {
  // The worker blocks its event loop until the file `unblock` exists: until then it cannot
  // answer status's ask for its count.
  const app = `Deno.serve((req) => {
  if (new URL(req.url).pathname === "/block") {
    console.log("blocking");
    while (true) { try { Deno.statSync("unblock"); break; } catch { /* blocked */ } }
  }
  return new Response("ok");
});
`;
  const served = (result: { stdout: string }) =>
    (JSON.parse(result.stdout) as StatusReport).children[0].requests;
  await withHotreload(
    { "main.ts": app },
    (port) => watchingArgs(port, "-w", "1", "--allow-read"),
    async (run, { dir, port }) => {
      await run.waitForOutput("1 worker(s) ready");
      for (let i = 0; i < 3; i++) assert.equal((await httpGet(port)).status, 200);
      let result = await runCli(["status", "--json"], dir);
      assert.equal(served(result), 3, result.stdout);
      let answered = false;
      const blocked = httpGet(port, "/block").finally(() => answered = true);
      await run.waitForOutput("blocking");
      result = await runCli(["status", "--json"], dir);
      // The worker was blocked all through this status: its request is still unanswered.
      assert.equal(answered, false);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(served(result), 3, result.stdout);
      await Deno.writeTextFile(`${dir}/unblock`, "");
      assert.equal((await blocked).status, 200);
      result = await runCli(["status", "--json"], dir);
      assert.equal(served(result), 4, result.stdout);
    },
  );
});
