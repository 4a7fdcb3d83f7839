/**
 * End-to-end: graceful and immediate stop, crash restarts with backoff, the
 * supervisor dying, and the `stop` command.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  httpGet,
  makeProject,
  MOD_URL,
  runCli,
  serveArgs,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";

const SLOW_APP = `
import { onShutdown } from "${MOD_URL}";
onShutdown(() => Deno.writeTextFileSync("shutdown-hook-ran", String(Deno.pid)));
Deno.serve(async (req) => {
  if (new URL(req.url).pathname === "/slow") {
    console.log("slow request started");
    await new Promise((r) => setTimeout(r, 2000));
  }
  return new Response("done " + Deno.pid);
});
`;

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test("SIGTERM: a 2 s request in flight completes with 200, hooks run, exit 0, nothing left", async () => {
  await withHotreload(
    { "main.ts": SLOW_APP },
    (port) => serveArgs(port, "--allow-write"),
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      const slow = httpGet(port, "/slow");
      await run.waitForOutput("slow request started");
      run.signal("SIGTERM");
      const response = await slow;
      assert.equal(response.status, 200);
      assert.match(response.body, /^done \d+$/);
      const status = await run.status;
      assert.equal(status.code, 0, run.output.text());
      assert.equal(Deno.readTextFileSync(`${dir}/shutdown-hook-ran`), response.body.split(" ")[1]);
      assert.deepEqual(taggedPids(run.tag), []);
      assert.ok(portIsFree(port), "the port is released");
    },
  );
});

Deno.test("SIGQUIT stops at once with exit code 0", async () => {
  await withHotreload(
    { "main.ts": SLOW_APP },
    (port) => serveArgs(port, "-w", "2"),
    async (run, { port }) => {
      await run.waitForReady(2);
      const slow = httpGet(port, "/slow").then(
        (response) => response.status === 200 ? "answered" : "cut off",
        () => "cut off",
      );
      await run.waitForOutput("slow request started");
      run.signal("SIGQUIT");
      assert.equal((await run.status).code, 0);
      assert.equal(await slow, "cut off", "an immediate stop does not wait for requests");
      assert.deepEqual(taggedPids(run.tag), []);
    },
  );
});

Deno.test("SIGKILL of the supervisor: every worker exits on its own and frees the port", async () => {
  await withHotreload(
    { "main.ts": SLOW_APP },
    (port) => serveArgs(port, "-w", "3"),
    async (run, { port }) => {
      await run.waitForReady(3);
      const workers = taggedPids(run.tag).filter((pid) => pid !== run.pid);
      assert.equal(workers.length, 3);
      run.signal("SIGKILL");
      await run.status;
      const started = Date.now();
      await waitFor(() => taggedPids(run.tag).length === 0, "orphaned workers to exit", 10_000);
      console.log(
        `orphaned workers gone ${Date.now() - started} ms after the supervisor's SIGKILL`,
      );
      assert.ok(portIsFree(port));
    },
  );
});

Deno.test("SIGKILL of the supervisor: orphans finish their requests, run their hooks, exit", async () => {
  await withHotreload(
    {
      "main.ts": `import { onShutdown } from "${MOD_URL}";
onShutdown(() => Deno.writeTextFileSync("hook-" + Deno.pid, "ran"));
Deno.serve(async () => {
  console.log("request in flight");
  await new Promise((r) => setTimeout(r, 300));
  return new Response("done " + Deno.pid);
});
`,
    },
    (port) => serveArgs(port, "-w", "2", "--allow-write"),
    async (run, { dir, port }) => {
      await run.waitForReady(2);
      const workers = taggedPids(run.tag).filter((pid) => pid !== run.pid);
      assert.equal(workers.length, 2);
      const inFlight = Array.from({ length: 6 }, () => httpGet(port));
      await waitFor(
        () => run.output.matches(/request in flight/).length === 6,
        "6 requests in the workers",
      );
      run.signal("SIGKILL");
      const answers = await Promise.all(inFlight);
      assert.deepEqual(answers.map((a) => a.status), [200, 200, 200, 200, 200, 200]);
      await waitFor(() => taggedPids(run.tag).length === 0, "orphaned workers to exit", 10_000);
      for (const pid of workers) {
        assert.equal(await Deno.readTextFile(`${dir}/hook-${pid}`), "ran", `worker ${pid}'s hook`);
      }
    },
  );
});

Deno.test("a crashing app is restarted with growing delays; the same error is shown once", async () => {
  await withHotreload(
    {
      "main.ts": `console.log("booting"); throw new Error("boom");\n`,
    },
    () => ["run", "main.ts"],
    async (run) => {
      // Logged at the 1st, 2nd and 4th failure (then 8th, 16th, ...): 100, 200, 800 ms.
      await waitFor(
        () => run.output.matches(/restarting in (\d+) ms/).length >= 3,
        () => `3 restart lines\n${run.output.text()}`,
      );
      const delays = run.output.matches(/restarting in (\d+) ms/).map((m) => Number(m[1]));
      assert.deepEqual(delays.slice(0, 3), [100, 200, 800]);
      assert.ok(run.output.has(/exit code 1 after/), "the exit status is logged");
      assert.ok(run.output.has(/crashed again, same error \(×4\)/), run.output.text());
      assert.equal(
        run.output.matches(/throw new Error\("boom"\)/).length,
        1,
        "the error is shown once",
      );
    },
  );
});

Deno.test("stop: stops a running instance and waits; exit 3 when none runs; stale pid file removed", async () => {
  await withHotreload(
    { "main.ts": SLOW_APP },
    (port) => serveArgs(port, "--name", "api"),
    async (run, { dir }) => {
      await run.waitForReady(1);
      const stopped = await runCli(["stop"], dir);
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stderr, /stopped "api"/);
      // `stop` returns only once the supervisor is gone.
      assert.deepEqual(taggedPids(run.tag), []);
      assert.equal((await run.status).code, 0);

      const none = await runCli(["stop"], dir);
      assert.equal(none.code, 3);
      assert.match(none.stderr, /no hotreload instance is running/);

      // A record left by a supervisor that died: its pid is dead (or reused), so it is never signalled.
      await Deno.mkdir(`${dir}/.hotreload/ghost`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/.hotreload/ghost/instance.json`,
        JSON.stringify({
          name: "ghost",
          pid: Deno.pid,
          startTime: 1,
          cwd: dir,
          entry: "x.ts",
          workers: 1,
          graceMs: 5000,
          startedAt: "",
        }),
      );
      const stale = await runCli(["stop", "--name", "ghost"], dir);
      assert.equal(stale.code, 3);
      // Its pid is this test's: alive, but another process than the one that wrote the record.
      assert.match(
        stale.stderr,
        new RegExp(
          `removed the stale record of "ghost" \\(pid ${Deno.pid} now belongs to another process\\)`,
        ),
      );
      await assert.rejects(() => Deno.stat(`${dir}/.hotreload/ghost/instance.json`));
    },
  );
});

Deno.test("grandchildren go too: on a graceful stop and when the supervisor is killed", async () => {
  const app = `new Deno.Command("sleep", { args: ["300"] }).spawn();\n${SLOW_APP}`;
  for (const how of ["SIGTERM", "SIGKILL"] as const) {
    const dir = await makeProject({ "main.ts": app });
    const port = freePort();
    const run = new Hotreload(
      serveArgs(port, "--allow-run", "-w", "2"),
      dir,
    );
    try {
      await run.waitForReady(2);
      // The supervisor, 2 workers and their 2 `sleep` children.
      await waitFor(() => taggedPids(run.tag).length === 5, "2 grandchildren running");
      run.signal(how);
      await run.status;
      await waitFor(() => taggedPids(run.tag).length === 0, `no process left after ${how}`, 10_000);
    } finally {
      await run.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  }
});
