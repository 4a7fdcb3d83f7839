/**
 * End-to-end: rolling reloads under load, broken code never replacing working
 * code, coalescing of triggers, and the `reload` command.
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, makeProject, runCli, serveArgs, withHotreload } from "./helpers.ts";
import { waitForBody } from "./load.ts";
import { runScenario } from "./netns.ts";

const app = (body: string) => `Deno.serve((_req) => new Response(${JSON.stringify(body)}));\n`;

interface LoadResult {
  ok: number;
  failures: string[];
  bodies: Record<string, number>;
}

Deno.test("SIGHUP reload under a continuous request loop: new body, no failed request", async () => {
  const result = await runScenario<LoadResult>("under_load", { scenario: "reload" });
  assert.deepEqual(result.failures, []);
  assert.ok(result.bodies.v1 > 0 && result.bodies.v2 > 0, JSON.stringify(result.bodies));
});

Deno.test("a syntax error in new code: the reload is aborted, the old workers keep serving", async () => {
  const result = await runScenario<LoadResult & { syntaxErrorReported: boolean }>(
    "under_load",
    { scenario: "broken-reload" },
  );
  assert.equal(result.syntaxErrorReported, true, "the syntax error is in the log");
  assert.deepEqual(result.failures, []);
  assert.ok(result.bodies.v1 > 0 && result.bodies.v3 > 0, JSON.stringify(result.bodies));
});

Deno.test("triggers during a rollout are coalesced into exactly one follow-up", async () => {
  // Each worker takes a moment to start, so the rollout is still running when more triggers arrive.
  const slowStart = (body: string) => `await new Promise((r) => setTimeout(r, 400));\n${app(body)}`;
  const dir = await makeProject({ "main.ts": slowStart("v1") });
  const port = freePort();
  const run = new Hotreload(serveArgs(port, "-w", "2"), dir);
  try {
    await run.waitForReady(2);
    run.signal("SIGHUP");
    await run.waitForOutput("SIGHUP: reloading 2 worker(s) to generation 2");
    for (let i = 0; i < 3; i++) run.signal("SIGHUP");
    await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 3/);
    const reloads = run.output.matches(/reloaded 2 workers/).length;
    assert.equal(reloads, 2, "the first rollout and exactly one follow-up");
    // No third rollout starts afterwards: a later reload is generation 4. Its
    // reply names the rollout that served it, which a stray one would push to 5.
    const later = await runCli(["reload"], dir);
    assert.equal(later.code, 0, later.stderr);
    assert.match(later.stderr, /reloaded 2 workers in \d+ ms \(generation 4; reload command\)/);
    assert.ok(!run.output.has(/generation 5/), run.output.text());
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("reload: with nothing running exits 3; with an instance it reloads", async () => {
  const dir = await makeProject({ "main.ts": app("v1") });
  const port = freePort();
  try {
    const none = await runCli(["reload"], dir);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /no hotreload instance is running/);
    const run = new Hotreload(serveArgs(port), dir);
    try {
      await run.waitForReady(1);
      await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
      const reload = await runCli(["reload"], dir);
      assert.equal(reload.code, 0, reload.stderr);
      await run.waitForOutput(/reloaded 1 worker in \d+ ms/);
      await waitForBody(port, "v2", 3);
    } finally {
      await run.cleanup();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const backend of ["events", "poll"] as const) {
  Deno.test(`a saved change reloads the workers (watching with ${backend}); ignored files do not`, async () => {
    const dir = await makeProject({
      "main.ts": app("v1"),
      ".gitignore": "generated/\n",
      "generated/out.ts": "// generated\n",
    });
    const port = freePort();
    const watchFlags = backend === "poll" ? ["--poll", "100"] : [];
    const run = new Hotreload(
      ["run", "main.ts", "-N", "-w", "2", "--port", String(port), ...watchFlags],
      dir,
    );
    try {
      await run.waitForReady(2);
      assert.ok(
        run.output.has(backend === "poll" ? "watching with polling" : "watching with file events"),
      );
      // Ignored: by .gitignore, by extension, and hotreload's own runtime directory.
      await Deno.writeTextFile(`${dir}/generated/out.ts`, "// regenerated\n");
      await Deno.writeTextFile(`${dir}/notes.txt`, "not code\n");
      await Deno.writeTextFile(`${dir}/.hotreload/scratch.ts`, "// ours\n");
      await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
      await run.waitForOutput(/1 file changed: main\.ts: reloading 2 worker\(s\) to generation 2/);
      await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2; 1 file: main\.ts\)/);
      await waitForBody(port, "v2");
      assert.equal(run.output.matches(/reloading .* to generation/).length, 1, run.output.text());
    } finally {
      await run.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/**
 * Runs hotreload in a user namespace whose inotify instance limit is 0, so
 * `Deno.watchFs` really fails (EMFILE) while the host is untouched.
 */
const NO_INOTIFY = [
  "unshare",
  "-U",
  "-r",
  "--",
  "sh",
  "-c",
  'echo 0 > /proc/sys/user/max_inotify_instances && exec "$@"',
  "sh",
];

Deno.test("when inotify cannot be used, hotreload polls, says why once, and reloads on a change", () =>
  withHotreload(
    { "main.ts": app("v1") },
    (port) => ["run", "main.ts", "-N", "--port", String(port)],
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      const why = /watching by polling: Deno\.watchFs failed on \S+ \(Too many open files/;
      assert.equal(run.output.matches(why).length, 1, run.output.text());
      assert.ok(run.output.has("watching with polling"), run.output.text());
      await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
      await run.waitForOutput(/1 file changed: main\.ts: reloading 1 worker\(s\) to generation 2/);
      await waitForBody(port, "v2");
      assert.equal(run.output.matches(why).length, 1, "the fallback is logged once");
    },
    { prefix: NO_INOTIFY },
  ));

Deno.test("when inotify cannot be used and --no-poll forbids polling, hotreload refuses in one line", () =>
  withHotreload(
    { "main.ts": app("v1") },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-poll"],
    async (run, { dir }) => {
      const status = await run.status;
      assert.equal(status.code, 2, run.output.text());
      const lines = run.output.text().trim().split("\n");
      assert.equal(lines.length, 1, run.output.text());
      assert.match(
        lines[0],
        /^hotreload: cannot watch .* with Deno\.watchFs \(Too many open files .*\) and polling is off \(--no-poll\); raise fs\.inotify\.max_user_watches/,
      );
      assert.ok(!run.output.has("ready"), "no worker started");
      await assert.rejects(() => Deno.stat(`${dir}/.hotreload`), "no runtime files left");
    },
    { prefix: NO_INOTIFY },
  ));

Deno.test("with --check, a type error aborts the reload and `reload` reports it", async () => {
  await withHotreload(
    { "main.ts": app("v1") },
    (port) => serveArgs(port, "--check"),
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      await Deno.writeTextFile(
        `${dir}/main.ts`,
        `const n: number = "x";\nDeno.serve((_req) => new Response("v2" + n));\n`,
      );
      const reload = await runCli(["reload"], dir);
      assert.equal(reload.code, 1);
      assert.match(
        reload.stderr,
        /reload aborted: worker 0 of generation 2 exited with exit code 1/,
      );
      assert.match(
        reload.stderr,
        /TS2322 \[ERROR\]: Type 'string' is not assignable to type 'number'/,
      );
      await waitForBody(port, "v1", 3);
    },
  );
});
