/**
 * End-to-end: custom processes beside the workers — ticking, crash restarts
 * with backoff, warm restart by SIGTERM with new code, messages, onShutdown on
 * stop, `restart` and `send` commands.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  makeProject,
  MOD_URL,
  runCli,
  serveArgs,
  waitFor,
} from "./helpers.ts";

const APP = `Deno.serve((_req) => new Response("ok"));\n`;

const ticker = (version: string) => `
import { defineProcess } from "${MOD_URL}";
export default defineProcess({
  async run(ctx) {
    let n = 0;
    while (!ctx.signal.aborted) {
      ctx.log("tick", ${
  JSON.stringify(version)
}, n++, ctx.name, ctx.index, JSON.stringify(ctx.args));
      await new Promise((r) => setTimeout(r, 100));
    }
  },
  onMessage(message) { console.log("got", JSON.stringify(message)); },
  onShutdown() { console.log("shutdown hook ran", ${JSON.stringify(version)}); },
});
`;

function start(dir: string, extra: string[]): Hotreload {
  return new Hotreload(serveArgs(freePort(), ...extra), dir);
}

Deno.test("a custom process ticks beside the workers, gets messages, runs onShutdown on stop", async () => {
  const dir = await makeProject({ "main.ts": APP, "ticker.ts": ticker("v1") });
  const run = start(dir, ["--process", "ticker=ticker.ts"]);
  try {
    await run.waitForOutput(/\[ticker#0 \d+\] tick v1 2 ticker 0 \{\}/);
    const sent = await runCli(["send", "ticker", '{"job":42}'], dir);
    assert.equal(sent.code, 0, sent.stderr);
    await run.waitForOutput(/\[ticker#0 \d+\] got \{"job":42\}/);

    const unknown = await runCli(["send", "nope", "{}"], dir);
    assert.equal(unknown.code, 3);
    assert.match(unknown.stderr, /no running process named "nope"; processes: ticker/);
    const badJson = await runCli(["send", "ticker", "{job"], dir);
    assert.equal(badJson.code, 2);
    assert.match(badJson.stderr, /the message must be JSON/);

    const stopped = await runCli(["stop"], dir);
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.equal((await run.status).code, 0);
    assert.ok(run.output.has(/\[ticker#0 \d+\] shutdown hook ran v1/), run.output.text());
    // Workers drain first, the custom process after them.
    const workerGone = run.output.lines.findIndex((l) =>
      /worker 0 .* exited after draining/.test(l)
    );
    const tickerGone = run.output.lines.findIndex((l) => /ticker#0 \(pid \d+\) stopped/.test(l));
    assert.ok(workerGone !== -1 && tickerGone > workerGone, run.output.text());
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a crashing custom process is restarted with growing delays", async () => {
  const dir = await makeProject({
    "main.ts": APP,
    "crash.ts": `console.log("up"); setTimeout(() => { throw new Error("consumer died"); }, 10);\n`,
  });
  const run = start(dir, ["--process", "crash=crash.ts"]);
  try {
    // Logged at the 1st, 2nd and 4th failure (the same error again is only counted).
    await waitFor(
      () => run.output.matches(/crash#0 \(pid \d+\) .* restarting in (\d+) ms/).length >= 3,
      `3 restart lines\n${run.output.text()}`,
    );
    const delays = run.output.matches(/crash#0 .* restarting in (\d+) ms/).map((m) => Number(m[1]));
    assert.deepEqual(delays.slice(0, 3), [100, 200, 800]);
    assert.ok(run.output.has(/crash#0 \(pid \d+\) exited with exit code 1/));
    // It ran (its output is live), so each run's output shows; the log lines collapse.
    assert.ok(run.output.has(/Error: consumer died/));
    assert.ok(run.output.has(/crash#0 \(pid \d+\) crashed again, same error \(×2\)/));
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SIGTERM to a custom process's pid: onShutdown runs, it starts again with the new code", async () => {
  const dir = await makeProject({ "main.ts": APP, "ticker.ts": ticker("v1") });
  const run = start(dir, ["--process", "ticker=ticker.ts"]);
  try {
    await run.waitForOutput(/\[ticker#0 \d+\] tick v1/);
    const pid = Number(run.output.matches(/\[ticker#0 (\d+)\] tick v1/)[0][1]);
    await Deno.writeTextFile(`${dir}/ticker.ts`, ticker("v2"));
    Deno.kill(pid, "SIGTERM");
    await run.waitForOutput(/\[ticker#0 \d+\] tick v2/);
    assert.ok(run.output.has(`[ticker#0 ${pid}] shutdown hook ran v1`));
    assert.ok(run.output.has(/ticker#0 \(pid \d+\) asked for a restart \(SIGTERM\)/));
    const newPid = Number(run.output.matches(/\[ticker#0 (\d+)\] tick v2/)[0][1]);
    assert.notEqual(newPid, pid);
    assert.ok(!run.output.has(/ticker#0 .* restarting in/), "a warm restart is not a crash");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("restart <name> restarts every instance; reload restarts processes after the workers", async () => {
  const dir = await makeProject({
    "main.ts": APP,
    "ticker.ts": ticker("v1"),
    "hotreload.json": JSON.stringify({
      processes: [{ name: "ticker", entry: "ticker.ts", count: 2 }],
    }),
  });
  const run = start(dir, []);
  const bothTick = async (version: string) => {
    await run.waitForOutput(new RegExp(`\\[ticker#0 \\d+\\] tick ${version}`));
    await run.waitForOutput(new RegExp(`\\[ticker#1 \\d+\\] tick ${version}`));
  };
  try {
    await bothTick("v1");
    await Deno.writeTextFile(`${dir}/ticker.ts`, ticker("v2"));
    const restarted = await runCli(["restart", "ticker"], dir);
    assert.equal(restarted.code, 0, restarted.stderr);
    assert.match(restarted.stderr, /restarting 2 instance\(s\) of "ticker", one at a time/);
    await bothTick("v2");
    assert.equal((await runCli(["restart", "nope"], dir)).code, 3);

    await Deno.writeTextFile(`${dir}/ticker.ts`, ticker("v3"));
    const reloaded = await runCli(["reload"], dir);
    assert.equal(reloaded.code, 0, reloaded.stderr);
    assert.match(reloaded.stderr, /reloaded 1 worker and 2 processes in \d+ ms \(generation 2/);
    await bothTick("v3");
    // After the workers: the reload's new worker was ready before the first
    // instance was stopped for v3 (both lines come from the supervisor's log).
    const lines = run.output.lines;
    const ready = lines.flatMap((line, i) => /worker 0 ready \(pid/.test(line) ? [i] : []);
    const stopped = lines.flatMap((line, i) =>
      /ticker#\d \(pid \d+\) stopped; starting it again/.test(line) ? [i] : []
    );
    assert.equal(ready.length, 2, "the first start and the reload's replacement");
    // Stops 1-2 were `restart ticker`; 3-4 the reload's.
    assert.equal(stopped.length, 4, run.output.text());
    assert.ok(ready[1] < stopped[2], run.output.text());

    await Deno.writeTextFile(`${dir}/ticker.ts`, ticker("v4"));
    const onlyProcesses = await runCli(["reload", "--processes"], dir);
    assert.equal(onlyProcesses.code, 0, onlyProcesses.stderr);
    assert.match(onlyProcesses.stderr, /reloaded 2 processes in/);
    await bothTick("v4");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a plain script (no defineProcess) is supervised too", async () => {
  const dir = await makeProject({
    "main.ts": APP,
    "plain.ts":
      `setInterval(() => console.log("plain", Deno.env.get("HOTRELOAD_PROCESS_NAME")), 100);\n`,
  });
  const run = start(dir, ["--allow-env", "--process", "plain=plain.ts"]);
  try {
    await run.waitForOutput(/\[plain#0 \d+\] plain plain/);
    assert.equal((await runCli(["stop"], dir)).code, 0);
    assert.equal((await run.status).code, 0);
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a custom process runs with its own permissions, not the workers'", async () => {
  const probe = `
const env = Deno.permissions.querySync({ name: "env" }).state;
const net = Deno.permissions.querySync({ name: "net" }).state;
console.log("permissions", env, net, env === "granted" ? Deno.env.get("HOTRELOAD_PROCESS_INDEX") : "-");
setInterval(() => {}, 1000);
`;
  const dir = await makeProject({
    "main.ts": APP,
    "probe.ts": probe,
    "hotreload.json": JSON.stringify({
      processes: [
        { name: "own", entry: "probe.ts", count: 2, permissions: ["--allow-env"] },
        { name: "inherited", entry: "probe.ts" },
      ],
    }),
  });
  const run = start(dir, []);
  try {
    await waitFor(() => run.output.matches(/permissions/).length >= 3, () => run.output.text());
    assert.ok(run.output.has(/\[own#0 \d+\] permissions granted prompt 0/), run.output.text());
    assert.ok(run.output.has(/\[own#1 \d+\] permissions granted prompt 1/), run.output.text());
    // Without its own list, a process gets the workers' Deno flags (here -N).
    assert.ok(
      run.output.has(/\[inherited#0 \d+\] permissions prompt granted -/),
      run.output.text(),
    );
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
