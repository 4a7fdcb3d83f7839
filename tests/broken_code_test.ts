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
      // The removed ones left service; they drain on through their close window.
      const serving = JSON.parse((await runCli(["status", "--json"], dir)).stdout).children
        .filter((row: { state: string }) => row.state !== "draining");
      assert.equal(serving.length, 1);
      const stop = await runCli(["stop"], sub);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal((await run.status).code, 0);
      await assert.rejects(() => Deno.stat(`${dir}/.hotreload`), "stop leaves no .hotreload");
    },
  ));

/** Fresh-connection GETs until `count` answered and `until` holds; every answer, or the error. */
async function askWhile(port: number, count: number, until: () => boolean): Promise<string[]> {
  const answers: string[] = [];
  const deadline = Date.now() + 20_000;
  while ((answers.length < count || !until()) && Date.now() < deadline) {
    answers.push(await httpGet(port).then((r) => r.body, (e) => `error: ${e.message}`));
  }
  return answers;
}

for (
  const [what, broken] of [
    [
      "a throw right after Deno.serve",
      `Deno.serve(() => new Response("bad"));\nJSON.parse(Deno.readTextFileSync("missing.json"));\n`,
    ],
    [
      "a top-level await rejecting 100 ms after Deno.serve",
      `Deno.serve(() => new Response("bad"));\n` +
      `await new Promise((_, reject) => setTimeout(() => reject(new Error("no database")), 100));\n`,
    ],
  ]
) {
  Deno.test(`watching: ${what} never replaces working code; a fix is served within 3 s`, () =>
    withHotreload(
      { "main.ts": good("v1") },
      (port) => ["run", "main.ts", "-A", "--port", String(port), "-w", "2"],
      async (run, { dir, port }) => {
        await run.waitForReady(2);
        await Deno.writeTextFile(`${dir}/main.ts`, broken);
        const answers = await askWhile(port, 20, () => run.output.has(/reload aborted/));
        assert.ok(run.output.has(/reload aborted/), run.output.text());
        // Bound is not started: no new worker ever counted as ready.
        const since = run.output.text().split("reloading 2 worker(s) to generation 2")[1];
        assert.doesNotMatch(since, /worker \d ready/, run.output.text());
        assert.ok(answers.length >= 20);
        assert.deepEqual(
          answers.filter((a) => a !== "v1"),
          [],
          "every answer came from the old code",
        );
        assert.ok(run.output.has(/the old workers keep serving/), run.output.text());
        await Deno.writeTextFile(`${dir}/main.ts`, good("fixed"));
        await waitFor(
          async () => (await httpGet(port).catch(() => undefined))?.body === "fixed",
          "the fix to answer within 3 s of the save",
          3_000,
        );
      },
    ));
}

Deno.test("unwatched: a reload to code that crashes 300 ms after it is ready exits 1; the old code answers", () =>
  withHotreload(
    { "main.ts": good("v1") },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "-w", "2", "--no-watch"],
    async (run, { dir, port }) => {
      await run.waitForReady(2);
      await Deno.writeTextFile(
        `${dir}/main.ts`,
        `Deno.serve(() => new Response("bad"));\n` +
          `setTimeout(() => { throw new Error("lost the database"); }, 300);\n`,
      );
      const reload = await runCli(["reload"], dir);
      assert.equal(reload.code, 1, reload.stdout + reload.stderr);
      assert.match(reload.stderr, /reload aborted: .*within the 1000 ms settle window/);
      assert.match(run.output.text(), /Error: lost the database/);
      for (let i = 0; i < 10; i++) assert.equal((await httpGet(port)).body, "v1");
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      assert.equal(status.supervisor.lastReload.ok, false);
      assert.ok(status.children.every((c: { generation: number }) => c.generation === 1));
    },
  ));

Deno.test("an app whose top level awaits its own server (Oak's await app.listen()) still becomes ready", () =>
  withHotreload(
    {
      "main.ts": `const server = Deno.serve(() => new Response("oak-style"));\n` +
        `await server.finished;\n`,
    },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "-w", "2"],
    async (run, { dir, port }) => {
      await run.waitForReady(2);
      assert.equal((await httpGet(port)).body, "oak-style");
      await Deno.writeTextFile(
        `${dir}/main.ts`,
        `const server = Deno.serve(() => new Response("v2"));\nawait server.finished;\n`,
      );
      await waitFor(async () => (await httpGet(port)).body === "v2", "the reload to v2");
    },
  ));
