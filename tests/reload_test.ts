/**
 * End-to-end: rolling reloads under load, broken code never replacing working
 * code, coalescing of triggers, and the `reload` command.
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, makeProject, runCli, waitFor } from "./helpers.ts";

const app = (body: string) => `Deno.serve((_req) => new Response(${JSON.stringify(body)}));\n`;

/** Keeps `clients` keep-alive request loops running until stopped; counts bodies and failures. */
function requestLoop(port: number, clients = 4) {
  const bodies = new Map<string, number>();
  const failures: string[] = [];
  let running = true;
  let lastBody = "";
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/`);
        const body = await response.text();
        if (response.status !== 200) failures.push(`status ${response.status}`);
        bodies.set(body, (bodies.get(body) ?? 0) + 1);
        lastBody = body;
      } catch (error) {
        failures.push(String(error));
      }
    }
  });
  return {
    bodies,
    failures,
    get lastBody() {
      return lastBody;
    },
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Waits until `n` consecutive fresh responses all carry `body`. */
async function waitForBody(port: number, body: string, n = 10): Promise<void> {
  let streak = 0;
  await waitFor(async () => {
    const text =
      await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } }))
        .text();
    streak = text === body ? streak + 1 : 0;
    return streak >= n;
  }, `${n} responses in a row saying "${body}"`);
}

Deno.test("SIGHUP reload under a continuous request loop: new body, no failed request", async () => {
  const dir = await makeProject({ "main.ts": app("v1") });
  const port = freePort();
  const run = new Hotreload([
    "run",
    "main.ts",
    "-N",
    "-w",
    "2",
    "--port",
    String(port),
    "--no-watch",
  ], dir);
  let load: ReturnType<typeof requestLoop> | undefined;
  try {
    await run.waitForReady(2);
    await waitForBody(port, "v1");
    load = requestLoop(port);
    await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
    run.signal("SIGHUP");
    await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2; SIGHUP\)/);
    await waitForBody(port, "v2");
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.ok((load.bodies.get("v1") ?? 0) > 0 && (load.bodies.get("v2") ?? 0) > 0);
  } finally {
    await load?.stop();
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a syntax error in new code: the reload is aborted, the old workers keep serving", async () => {
  const dir = await makeProject({ "main.ts": app("v1") });
  const port = freePort();
  const run = new Hotreload([
    "run",
    "main.ts",
    "-N",
    "-w",
    "2",
    "--port",
    String(port),
    "--no-watch",
  ], dir);
  let load: ReturnType<typeof requestLoop> | undefined;
  try {
    await run.waitForReady(2);
    await waitForBody(port, "v1");
    load = requestLoop(port, 2);
    await Deno.writeTextFile(`${dir}/main.ts`, `Deno.serve((_req) => new Response("v2")) +++;\n`);
    run.signal("SIGHUP");
    await run.waitForOutput(
      /reload aborted: worker 0 of generation 2 exited with exit code 1 before it was ready/,
    );
    assert.ok(
      run.output.has(/^\s+error: .*SyntaxError/),
      `the error is reported:\n${run.output.text()}`,
    );
    await waitForBody(port, "v1");
    // The next reload with fixed code goes through.
    await Deno.writeTextFile(`${dir}/main.ts`, app("v3"));
    run.signal("SIGHUP");
    await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 3/);
    await waitForBody(port, "v3");
    await load.stop();
    assert.deepEqual(load.failures, []);
    assert.equal(load.bodies.get("v2"), undefined);
  } finally {
    await load?.stop();
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("triggers during a rollout are coalesced into exactly one follow-up", async () => {
  // Each worker takes a moment to start, so the rollout is still running when more triggers arrive.
  const slowStart = (body: string) => `await new Promise((r) => setTimeout(r, 400));\n${app(body)}`;
  const dir = await makeProject({ "main.ts": slowStart("v1") });
  const port = freePort();
  const run = new Hotreload([
    "run",
    "main.ts",
    "-N",
    "-w",
    "2",
    "--port",
    String(port),
    "--no-watch",
  ], dir);
  try {
    await run.waitForReady(2);
    run.signal("SIGHUP");
    await run.waitForOutput("SIGHUP: reloading 2 worker(s) to generation 2");
    for (let i = 0; i < 3; i++) run.signal("SIGHUP");
    await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 3/);
    const reloads = run.output.matches(/reloaded 2 workers/).length;
    assert.equal(reloads, 2, "the first rollout and exactly one follow-up");
    // No third rollout starts afterwards: prove it by a later reload being generation 4.
    run.signal("SIGHUP");
    await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 4/);
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
    const run = new Hotreload(["run", "main.ts", "-N", "--port", String(port), "--no-watch"], dir);
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
