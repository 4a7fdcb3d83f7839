/**
 * Broken code and the edit loop: new code is tried at once, a failed start
 * is shown once, a crash loop stays quiet, an unwatched service that cannot
 * start gives up, ports are the pool's, control commands work from anywhere
 * in the project.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  httpGet,
  makeProject,
  runCli,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";

const good = (body: string) => `Deno.serve((_req) => new Response(${JSON.stringify(body)}));\n`;
const SYNTAX_ERROR = `Deno.serve((_req) => new Response("v1"));\nconst broken = ;\n`;

Deno.test("a syntax error, then a fix with a 12.8 s backoff pending: the fix answers within 2 s", () =>
  withHotreload(
    { "main.ts": SYNTAX_ERROR },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "-w", "2"],
    async (run, { dir, port }) => {
      await run.waitForOutput(
        /waiting for a change \(generation 1 failed: SyntaxError in main\.ts:2\)/,
      );
      // Broken for about 13 s: the next retry would be 12.8 s away.
      await waitFor(
        () => run.output.has(/same error \(×8\); restarting in 12\.8 s/),
        "8 failures",
        30_000,
      );
      await Deno.writeTextFile(`${dir}/main.ts`, good("fixed"));
      await waitFor(
        async () => (await httpGet(port).catch(() => undefined))?.body === "fixed",
        "the fixed code to answer within 2 s of the save",
        2_000,
      );
      // Truthful: "started" when nothing served before (a worker's retry may win the race).
      await run.waitForOutput(
        /generation 2 started 2 workers; all ready in \d+ ms \(1 file: main\.ts\)|reloaded 2 workers in/,
      );
      // The error block (its code frame) was shown once, not once per worker or attempt.
      assert.equal(run.output.matches(/const broken = ;/).length, 1, run.output.text());
    },
  ));

Deno.test("unwatched, an entry that throws at start: one error block, exit 1, nothing left", async () => {
  const dir = await makeProject({ "main.ts": `throw new TypeError("no database");\n` });
  const run = new Hotreload(["run", "main.ts", "-N", "--no-watch", "-w", "2"], dir);
  try {
    const status = await run.status;
    assert.equal(status.code, 1, run.output.text());
    // The error block (its code frame) once; the summaries name it in a few words.
    assert.equal(run.output.matches(/throw new TypeError/).length, 1, run.output.text());
    assert.ok(
      run.output.has(
        /error: the app never became ready: worker \d failed 5 times in a row \(TypeError: no database \(main\.ts:1\)\); giving up/,
      ),
      run.output.text(),
    );
    assert.deepEqual(taggedPids(run.tag), []);
    await assert.rejects(() => Deno.stat(`${dir}/.hotreload`), "nothing left behind");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a crash loop writes a bounded number of log lines", () =>
  withHotreload(
    { "main.ts": `console.log("booting"); throw new Error("boom");\n` },
    () => ["run", "main.ts", "-w", "2"],
    async (run) => {
      await waitFor(() => run.output.has(/same error \(×8\)/), "8 failures in one slot", 30_000);
      // 2 workers × 8 failures = 16 crashes: one block, then a line at ×2, ×4, ×8 per worker.
      const lines = run.output.lines.length;
      assert.ok(lines <= 25, `${lines} lines for 16 crashes:\n${run.output.text()}`);
      const delays = run.output.matches(/worker 0 .*restarting in (\d+) ms/).map((m) =>
        Number(m[1])
      );
      assert.deepEqual(delays.slice(0, 3), [100, 200, 800]);
    },
  ));

Deno.test("a missing permission names the flag to add, with the app's own code frame", () =>
  withHotreload(
    { "main.ts": good("x") },
    (port) => ["run", "main.ts", "--port", String(port)],
    async (run) => {
      await run.waitForOutput(
        /the app needs net permission: add --allow-net \(or --allow-net=0\.0\.0\.0:\d+\)/,
      );
      assert.ok(
        run.output.has(/Deno\.serve\(\(_req\) => new Response\("x"\)\);/),
        "the app's line",
      );
      assert.ok(!run.output.has(/originalServe|worker_preload\.ts/), run.output.text());
    },
  ));

Deno.test("an app that ignores --port is named at once; status shows the port really bound", () => {
  const own = freePort();
  return withHotreload(
    { "main.ts": `Deno.serve({ port: ${own} }, (_req) => new Response("x"));\n` },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch"],
    async (run, { dir, port }) => {
      await run.waitForOutput(
        new RegExp(
          `worker 0 listens on port ${own}, not on --port ${port}: the app ignores --port`,
        ),
      );
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      assert.deepEqual(status.supervisor.boundPorts, [own]);
    },
  );
});

Deno.test("a foreign app already listening on the app's own port (reusePort) is refused", async () => {
  const port = freePort();
  const dir = await makeProject({
    "main.ts": `Deno.serve({ port: ${port} }, (_req) => new Response("ours"));\n`,
    "other.ts":
      `Deno.serve({ port: ${port}, reusePort: true }, (_req) => new Response("theirs"));\n`,
  });
  const other = new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", "--unstable-net", "other.ts"],
    cwd: dir,
    stdout: "null",
    stderr: "null",
  }).spawn();
  const run = new Hotreload(["run", "main.ts", "-N", "--no-watch"], dir);
  try {
    await waitFor(async () => (await httpGet(port).catch(() => undefined))?.body, "the other app");
    const status = await run.status;
    assert.equal(status.code, 1, run.output.text());
    assert.ok(
      run.output.has(
        new RegExp(
          `error: port ${port} is already served by another process \\(pid ${other.pid}: .*other\\.ts\\)`,
        ),
      ),
      run.output.text(),
    );
    assert.deepEqual(taggedPids(run.tag), []);
  } finally {
    other.kill("SIGKILL");
    await other.status;
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control commands work from a subdirectory and say where they act; scale waits", () =>
  withHotreload(
    { "main.ts": good("x"), "src/deep/file.ts": "" },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch"],
    async (run, { dir }) => {
      await run.waitForReady(1);
      const sub = `${dir}/src/deep`;
      const status = await runCli(["status", "--json"], sub);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stderr, new RegExp(`acting on the instances of ${dir}`));
      const scale = await runCli(["scale", "3"], sub);
      assert.equal(scale.code, 0, scale.stderr);
      assert.match(scale.stderr, /3 worker\(s\) ready in \d+ ms/);
      // It returned only once they were: status says so right away.
      const rows = JSON.parse((await runCli(["status", "--json"], dir)).stdout).children;
      assert.equal(rows.filter((r: { state: string }) => r.state === "ready").length, 3);
      const down = await runCli(["scale", "1"], sub);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(JSON.parse((await runCli(["status", "--json"], dir)).stdout).children.length, 1);
      const stop = await runCli(["stop"], sub);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal((await run.status).code, 0);
      await assert.rejects(() => Deno.stat(`${dir}/.hotreload`), "stop leaves no .hotreload");
    },
  ));
