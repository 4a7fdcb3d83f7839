/**
 * End-to-end: the control plane — status during a rollout, scaling and
 * recycling under load, the config file, json logs, stale socket recovery.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  killTagged,
  makeProject,
  MOD_URL,
  runCli,
  serveArgs,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";
import { runScenario } from "./netns.ts";
import type { StatusReport } from "../src/control/protocol.ts";

const APP = `Deno.serve((_req) => new Response(String(Deno.pid)));\n`;

async function status(dir: string): Promise<StatusReport> {
  const result = await runCli(["status", "--json"], dir);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as StatusReport;
}

Deno.test("every control command exits 3 with one line when nothing runs", async () => {
  const dir = await makeProject({ "main.ts": APP });
  try {
    for (
      const args of [
        ["status"],
        ["scale", "2"],
        ["send", "q", "{}"],
        ["restart", "q"],
        ["reload"],
        ["stop"],
      ]
    ) {
      const result = await runCli(args, dir);
      assert.equal(result.code, 3, `${args[0]}: ${result.stderr}`);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
      assert.match(result.stderr, /no hotreload instance is running/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("status shows the right rows and states during a rollout", async () => {
  const slow = `await new Promise((r) => setTimeout(r, 700));\n${APP}`;
  const dir = await makeProject({ "main.ts": slow, "tick.ts": "setInterval(() => {}, 1000);\n" });
  const port = freePort();
  const run = new Hotreload(
    serveArgs(port, "-w", "2", "--process", "tick=tick.ts"),
    dir,
  );
  try {
    await run.waitForReady(2);
    const before = await status(dir);
    assert.equal(before.supervisor.pid, run.pid);
    assert.equal(before.supervisor.watcher, null);
    assert.deepEqual(
      before.children.map((c) => [c.role, c.id, c.state, c.generation]),
      [["worker", 0, "ready", 1], ["worker", 1, "ready", 1], ["process", "tick#0", "ready", 1]],
    );
    assert.ok(before.children.every((c) => c.pid !== null && (c.rssBytes ?? 0) > 0));
    run.signal("SIGHUP");
    // The canary: a generation-2 worker starting while both generation-1 workers still serve.
    const during = await waitFor(async () => {
      const report = await status(dir);
      const workers = report.children.filter((c) => c.role === "worker");
      const starting = workers.filter((c) => c.state === "starting" && c.generation === 2);
      const serving = workers.filter((c) => c.state === "ready" && c.generation === 1);
      return starting.length === 1 && serving.length === 2 ? report : undefined;
    }, "a starting generation-2 worker beside 2 ready generation-1 workers");
    assert.equal(during.supervisor.reloading, true);
    await run.waitForOutput(/reloaded 2 workers and 1 process/);
    const after = await status(dir);
    assert.deepEqual(
      after.children.filter((c) => c.state !== "draining").map((
        c,
      ) => [c.id, c.state, c.generation]),
      [[0, "ready", 2], [1, "ready", 2], ["tick#0", "ready", 2]],
    );
    assert.equal(after.supervisor.lastReload?.ok, true);
    const table = await runCli(["status"], dir);
    assert.equal(table.code, 0);
    assert.ok(table.stdout.split("\n").every((line) => line.length <= 100), table.stdout);
    assert.match(table.stdout, /^worker +0 +\d+ +ready +2 /m);
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("scale up and down (command and SIGTTIN/SIGTTOU) under load without failed requests", async () => {
  const result = await runScenario<{ ok: number; failures: string[]; steps: string[] }>(
    "under_load",
    { scenario: "scale" },
  );
  // Scaling down drains workers while the clients keep going.
  assert.deepEqual(result.steps, ["3→3", "1→1", "SIGTTIN→2", "SIGTTOU→1"]);
  assert.deepEqual(result.failures, []);
  assert.ok(result.ok > 0);
});

Deno.test("--max-requests recycles workers under load without failed requests", async () => {
  const result = await runScenario<{ ok: number; failures: string[]; limits: number[] }>(
    "under_load",
    { scenario: "max-requests" },
  );
  assert.deepEqual(result.failures, []);
  assert.ok(result.limits.length >= 3);
  assert.ok(
    result.limits.every((n) => n >= 40 && n <= 50),
    `limits within the jitter: ${result.limits}`,
  );
});

Deno.test("scale rejects a bad count", async () => {
  await withHotreload(
    { "main.ts": APP },
    (port) => serveArgs(port),
    async (run, { dir }) => {
      await run.waitForReady(1);
      for (
        const [bad, says] of [
          ["0", /cannot scale to 0 worker\(s\): at least 1 must run/],
          ["two", /scale needs a number of workers \(1 to 1024\), \+n, -n or auto \(got "two"\)/],
          ["2000", /cannot scale to 2000 worker\(s\): at most 1024/],
          ["-1", /cannot scale to 0 worker\(s\) \(1 - 1\): at least 1 must run/],
        ] as const
      ) {
        const result = await runCli(["scale", bad], dir);
        assert.equal(result.code, 2, bad);
        assert.match(result.stderr, says);
        assert.equal(result.stderr.trim().split("\n").length, 1, "one line");
      }
      assert.equal((await status(dir)).supervisor.workers, 1, "nothing changed");
    },
  );
});

Deno.test("--max-memory recycles a worker whose memory stays above the limit", async () => {
  const app = `
const hoard: Uint8Array[] = [];
Deno.serve((req) => {
  if (new URL(req.url).pathname === "/grow") {
    for (let i = 0; i < 12; i++) hoard.push(new Uint8Array(10 * 2 ** 20).fill(1));
  }
  return new Response(String(Deno.pid));
});
`;
  const dir = await makeProject({ "main.ts": app });
  const port = freePort();
  const run = new Hotreload(
    serveArgs(port, "--max-memory", "120", "--memory-check-interval", "100"),
    dir,
  );
  try {
    await run.waitForReady(1);
    const before = await (await fetch(`http://127.0.0.1:${port}/grow`)).text();
    await run.waitForOutput(
      /worker 0 \(pid \d+\) uses \d+ MB, above --max-memory 120 MB: replacing it/,
    );
    await waitFor(async () => {
      const rows = (await status(dir)).children;
      return rows.length === 1 && rows[0].state === "ready" && String(rows[0].pid) !== before;
    }, "the replacement serving alone");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config file: flags beat the file, the file beats defaults; --config reaches the workers", async () => {
  const port = freePort();
  const dir = await makeProject({
    "main.ts":
      `import { greeting } from "greeting";\nDeno.serve((_req) => new Response(greeting));\n`,
    "greeting.ts": `export const greeting = "hi from the import map";\n`,
    "app.json": JSON.stringify({
      imports: { greeting: "./greeting.ts" },
      hotreload: { entry: "main.ts", workers: 3, port, watch: false, denoFlags: ["--allow-net"] },
    }),
  });
  const run = new Hotreload(["run", "--config", "app.json", "--workers", "2"], dir);
  try {
    await run.waitForReady(2);
    const report = await status(dir);
    assert.equal(report.supervisor.workers, 2, "--workers beats the file");
    assert.equal(report.supervisor.port, port, "the file's port beats the default");
    assert.equal(report.supervisor.watcher, null, "watch: false from the file");
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    assert.equal(body, "hi from the import map");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config file errors name the file and the key, exit 2, start nothing", async () => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [
      { "hotreload.json": `{ "wrokers": 2 }` },
      /^hotreload: hotreload\.json: unknown key "wrokers" \(did you mean "workers"\?\)$/,
    ],
    [
      { "hotreload.json": `{ "workers": "many" }` },
      /^hotreload: hotreload\.json: "workers" must be/,
    ],
    [{
      "deno.json":
        `{ "hotreload": { "processes": [{ "name": "q", "entry": "main.ts", "restart": "sometimes" }] } }`,
    }, /^hotreload: deno\.json: hotreload\.processes\[0\]\.restart must be one of/],
  ];
  for (const [files, expected] of cases) {
    const dir = await makeProject({ "main.ts": APP, ...files });
    const tag = crypto.randomUUID();
    try {
      const result = await runCli(["run", "main.ts"], dir, { HOTRELOAD_TEST_TAG: tag });
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr.trim(), expected);
      assert.deepEqual(taggedPids(tag), []);
    } finally {
      killTagged(tag); // only if it wrongly started something
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("a config file's processes run, and restart: never stays down", async () => {
  const port = freePort();
  const dir = await makeProject({
    "main.ts": APP,
    "once.ts": `console.log("once ran", JSON.stringify((await import("${MOD_URL}"))` +
      `.processInfo()?.args));\n`,
    "hotreload.json": JSON.stringify({
      port,
      watch: false,
      denoFlags: ["--allow-net"],
      processes: [{ name: "once", entry: "once.ts", restart: "never", args: { k: 1 } }],
    }),
  });
  const run = new Hotreload(["run", "main.ts"], dir);
  try {
    await run.waitForOutput(
      /once#0 \(pid \d+\) exited with exit code 0; not restarted \(restart: never\)/,
    );
    assert.ok(run.output.has(/\[once#0 \d+\] once ran \{"k":1\}/), run.output.text());
    const rows = (await status(dir)).children.filter((c) => c.role === "process");
    assert.deepEqual(rows.map((c) => [c.id, c.state, c.pid]), [["once#0", "stopped", null]]);
    // Stays down: still so after a workers-only reload, which outlasts any
    // restart backoff (it drains the old worker for 250 ms first).
    const reload = await runCli(["reload", "--workers"], dir);
    assert.equal(reload.code, 0, reload.stderr);
    assert.equal(
      run.output.matches(/\[once#0 \d+\] once ran/).length,
      1,
      "it ran once, stays down",
    );
    const after = (await status(dir)).children.filter((c) => c.role === "process");
    assert.deepEqual(after.map((c) => [c.id, c.state, c.pid]), [["once#0", "stopped", null]]);
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--log-format json: one object per line with time, level, event, role, id, pid", async () => {
  await withHotreload(
    { "main.ts": `console.log("hello");\n${APP}` },
    (port) => serveArgs(port, "--log-format", "json"),
    async (run) => {
      await run.waitForOutput(/"event":"worker.ready"/);
      await run.waitForOutput(/"message":"hello"/);
      const objects = run.output.lines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
      const ready = objects.find((o) => o.event === "worker.ready");
      assert.equal(ready.role, "worker");
      assert.equal(ready.id, 0);
      assert.equal(typeof ready.pid, "number");
      assert.ok(!Number.isNaN(Date.parse(ready.time)));
      assert.equal(ready.level, "info");
      const output = objects.find((o) => o.event === "output");
      assert.deepEqual([output.role, output.stream, output.message], ["worker", "stdout", "hello"]);
    },
  );
});

// A live instance is never clobbered: bad_input_test.ts ("a second instance with the same name").
Deno.test("after a SIGKILL the stale pid file and socket are replaced", async () => {
  const dir = await makeProject({ "main.ts": APP });
  const first = new Hotreload(serveArgs(freePort()), dir);
  let second: Hotreload | undefined;
  try {
    await first.waitForReady(1);
    assert.equal(Deno.statSync(`${dir}/.hotreload`).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(`${dir}/.hotreload/main`).mode! & 0o777, 0o700);
    assert.equal(Deno.statSync(`${dir}/.hotreload/main/control.sock`).mode! & 0o777, 0o600);
    first.signal("SIGKILL");
    await first.status;
    await waitFor(() => taggedPids(first.tag).length === 0, "orphans to exit");
    assert.ok(
      Deno.statSync(`${dir}/.hotreload/main/control.sock`),
      "the dead supervisor's socket is left",
    );
    const listed = await runCli(["list", "--json"], dir);
    assert.equal(JSON.parse(listed.stdout)[0].state, "stale");

    second = new Hotreload(serveArgs(freePort()), dir);
    await second.waitForReady(1);
    assert.equal((await status(dir)).supervisor.pid, second.pid);
  } finally {
    try {
      await first.cleanup();
    } finally {
      await second?.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("without its control socket, stop and reload fall back to signals; reload --workers refuses", async () => {
  await withHotreload({ "main.ts": APP }, (port) => serveArgs(port), async (run, { dir }) => {
    await run.waitForReady(1);
    Deno.removeSync(`${dir}/.hotreload/main/control.sock`);
    const workersOnly = await runCli(["reload", "--workers"], dir);
    assert.equal(workersOnly.code, 1, workersOnly.stderr);
    assert.match(
      workersOnly.stderr,
      /^hotreload: "main" does not answer on its control socket, which "reload --workers" needs/,
    );
    assert.ok(!run.output.has("reloading"), "no signal was sent for it");
    const reload = await runCli(["reload"], dir);
    assert.equal(reload.code, 0, reload.stderr);
    assert.match(reload.stderr, /sent SIGHUP to "main" \(pid \d+\)/);
    await run.waitForOutput(/reloaded 1 worker in \d+ ms \(generation 2; SIGHUP\)/);
    const stop = await runCli(["stop"], dir);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await run.status).code, 0);
  });
});

Deno.test("a reload queued behind another is answered when the instance stops; nothing signals a gone pid", () =>
  withHotreload(
    { "main.ts": `Deno.serve(() => new Response("ok"));\n` },
    // A long settle window keeps the first reload running while the second waits behind it.
    (port) => serveArgs(port, "--settle", "3000"),
    async (run, { dir }) => {
      await run.waitForReady(1);
      const first = runCli(["reload"], dir);
      await run.waitForOutput("reloading 1 worker(s) to generation 2");
      const queued = runCli(["reload"], dir);
      await run.waitForOutput("one more reload will follow");
      assert.equal((await runCli(["stop"], dir)).code, 0);
      for (const reload of [await first, await queued]) {
        assert.equal(reload.code, 1, reload.stderr);
        assert.match(reload.stderr, /the instance is stopping/);
        assert.doesNotMatch(reload.stderr, /sent SIGHUP/);
      }
    },
  ));
