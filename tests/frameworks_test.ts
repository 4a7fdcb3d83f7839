/**
 * Apps on node:http, node:https and node:net run unchanged: Express and
 * friends, from npm, written as their docs show.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  httpGet,
  killTagged,
  runCli,
  taggedPids,
  waitFor,
} from "./helpers.ts";
import { FRAMEWORK_APPS, npmProject } from "./frameworks.ts";
import { runScenario } from "./netns.ts";

interface Row {
  role: string;
  pid: number;
  state: string;
  requests: number | null;
}

async function workerRows(dir: string): Promise<Row[]> {
  const status = await runCli(["status", "--json"], dir);
  assert.equal(status.code, 0, status.stderr);
  return JSON.parse(status.stdout).children.filter((row: Row) => row.role === "worker");
}

for (const [framework, app] of Object.entries(FRAMEWORK_APPS)) {
  Deno.test(`${framework}: 2 workers share the port, reload on an edit, count requests, recycle, stop`, async () => {
    const dir = await npmProject({ "main.js": app("v1") });
    const port = freePort();
    const run = new Hotreload(
      ["run", "main.js", "-A", "--workers", "2", "--port", String(port), "--max-requests", "60"],
      dir,
    );
    try {
      await run.waitForReady(2);
      const rows = await workerRows(dir);
      assert.equal(new Set(rows.map((row) => row.pid)).size, 2, "2 workers, distinct pids");
      // Fresh connections: the kernel spreads them over both workers.
      const seen = new Set<string>();
      await waitFor(async () => {
        const { status, body } = await httpGet(port);
        assert.equal(status, 200);
        assert.match(body, /^v1 \d+$/);
        seen.add(body);
        return seen.size === 2;
      }, "answers from both workers");
      await waitFor(
        async () => (await workerRows(dir)).reduce((n, row) => n + (row.requests ?? 0), 0) >= 2,
        "status counts the requests",
      );

      await Deno.writeTextFile(`${dir}/main.js`, app("v2"));
      await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2/);
      for (let i = 0; i < 10; i++) assert.match((await httpGet(port)).body, /^v2 \d+$/);

      // --max-requests 60: a recycle, ready first.
      await waitFor(async () => {
        await httpGet(port);
        return run.output.has(/served \d+ requests \(--max-requests\): replacing it/);
      }, () => `a recycle\n${run.output.text()}`);
      assert.ok(!run.output.has(/exited with exit code 0|crash/), run.output.text());

      const stop = await runCli(["stop"], dir);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal((await run.status).code, 0);
      assert.deepEqual(taggedPids(run.tag), []);
    } finally {
      await run.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("a node:net echo server shares the port across 2 workers", async () => {
  const echo = `import net from "node:net";
const server = net.createServer((socket) => {
  socket.write(\`pid \${process.pid}\\n\`);
  socket.pipe(socket);
});
server.listen(Number(process.env.PORT));
`;
  const dir = await npmProject({ "main.js": echo });
  const port = freePort();
  const run = new Hotreload(["run", "main.js", "-A", "-w", "2", "--port", String(port)], dir);
  try {
    await run.waitForReady(2);
    const pids = new Set<string>();
    await waitFor(async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(new TextEncoder().encode("hello\n"));
      const reader = conn.readable.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("hello\n")) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      await reader.cancel();
      assert.match(text, /^pid \d+\nhello\n$/);
      pids.add(text.split("\n")[0]);
      return pids.size === 2;
    }, "echoes from both workers");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a framework that swallows EADDRINUSE: one line naming the port, exit 1, nothing left", async () => {
  // Express hands the error to its listen callback and the process exits 0.
  const app = `import express from "express";
const app = express();
app.listen(Number(process.env.APP_PORT), (error) => {
  console.log("listening", error ? "(not really)" : "");
});
`;
  const dir = await npmProject({ "main.js": app });
  const port = freePort();
  // A foreign listener without SO_REUSEPORT holds the port.
  const foreign = Deno.listen({ hostname: "0.0.0.0", port });
  // No --port: the app names its own, so only the worker can find out.
  const run = new Hotreload(["run", "main.js", "-A", "-w", "2", "--no-watch"], dir, {
    APP_PORT: String(port),
  });
  try {
    const status = await run.status;
    assert.equal(status.code, 1, run.output.text());
    const errors = run.output.lines.filter((line) => /error:/.test(line));
    assert.equal(errors.length, 1, run.output.text());
    assert.match(errors[0], new RegExp(`cannot listen: port ${port} is already in use`));
    assert.ok(!run.output.has(/exited with exit code 0/), run.output.text());
    assert.deepEqual(taggedPids(run.tag), []);
  } finally {
    foreign.close();
    killTagged(run.tag);
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--host binds export-default and unnamed-host apps to that address, and is exported as HOST", async () => {
  const app = `export default {
  fetch: () => new Response(Deno.env.get("HOST") ?? "none"),
};
`;
  const dir = await npmProject({ "main.ts": app });
  const port = freePort();
  const run = new Hotreload(
    ["run", "main.ts", "-A", "--port", String(port), "--host", "127.0.0.1", "--no-watch"],
    dir,
  );
  try {
    await run.waitForReady(1);
    assert.equal((await httpGet(port)).body, "127.0.0.1");
    const tcp = Deno.readTextFileSync("/proc/net/tcp");
    const hex = port.toString(16).toUpperCase().padStart(4, "0");
    assert.match(tcp, new RegExp(`0100007F:${hex} 00000000:0000 0A`), "bound to 127.0.0.1");
    assert.doesNotMatch(tcp, new RegExp(`00000000:${hex} 00000000:0000 0A`), "not to 0.0.0.0");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Express under load: 0 failed requests over 10 reloads (keep-alive clients)", async () => {
  const result = await runScenario<{ ok: number; failures: string[]; reloads: number }>(
    "under_load",
    { scenario: "express-reloads" },
  );
  assert.deepEqual(result.failures, []);
  assert.equal(result.reloads, 10);
  assert.ok(result.ok > 0);
});

Deno.test("an app that forks with node:cluster works: its primary holds the pool's listener", async () => {
  const app = `import cluster from "node:cluster";
import http from "node:http";
if (cluster.isPrimary) {
  for (let i = 0; i < 2; i++) cluster.fork();
} else {
  http.createServer((req, res) => res.end("from a cluster child")).listen(process.env.PORT);
}
`;
  const dir = await npmProject({ "main.js": app });
  const port = freePort();
  const run = new Hotreload(["run", "main.js", "-A", "--port", String(port), "--no-watch"], dir);
  try {
    await run.waitForReady(1);
    assert.equal((await httpGet(port)).body, "from a cluster child");
    const reload = await runCli(["reload"], dir);
    assert.equal(reload.code, 0, reload.stderr);
    // Forked children share their primary's listening socket: the old ones
    // accept until their primary is gone.
    await waitFor(async () => {
      const rows = JSON.parse((await runCli(["status", "--json"], dir)).stdout).children;
      return rows.length === 1 && rows[0].generation === 2;
    }, "the old primary gone");
    assert.equal((await httpGet(port)).body, "from a cluster child");
    // cleanup() fails if a forked child outlives the stop.
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
