/**
 * Long-lived connections, hung workers and health-gated reloads: a stream
 * learns that its worker drains and ends cleanly; a reload is done once no
 * old worker accepts; a blocked event loop is replaced; a new generation
 * whose ready path fails never replaces the working one.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  httpGet,
  MOD_URL,
  runCli,
  serveArgs,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";
import { npmProject } from "./frameworks.ts";

const SSE_APP = `import { drainSignal } from "${MOD_URL}";
Deno.serve((_req) => {
  let tick;
  const body = new ReadableStream({
    start(controller) {
      controller.enqueue("data: hello\\n\\n");
      tick = setInterval(() => controller.enqueue("data: tick\\n\\n"), 100);
      drainSignal().addEventListener("abort", () => {
        clearInterval(tick);
        controller.enqueue("event: reconnect\\ndata: bye\\n\\n");
        controller.close();
      });
    },
    cancel() { clearInterval(tick); },
  });
  return new Response(body.pipeThrough(new TextEncoderStream()), {
    headers: { "content-type": "text/event-stream" },
  });
});
`;

/** Opens an event stream; `text` grows as it comes; `ended` resolves when the server ends it. */
async function openStream(port: number) {
  const response = await fetch(`http://127.0.0.1:${port}/`);
  const state = { text: "", clean: false };
  const ended = (async () => {
    try {
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
        state.text += chunk;
      }
      state.clean = true;
    } catch {
      state.clean = false;
    }
  })();
  await waitFor(() => state.text.includes("hello"), "the stream to start");
  return { state, ended };
}

for (const how of ["reload", "stop"] as const) {
  Deno.test(`SSE across a ${how}: the stream gets the app's last event and a clean end, at once`, () =>
    withHotreload(
      { "main.ts": SSE_APP },
      // A grace far longer than any test wait: a reload that waited for it would time out.
      (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch", "--grace", "60000"],
      async (run, { dir, port }) => {
        await run.waitForReady(1);
        const stream = await openStream(port);
        const result = await runCli([how], dir);
        assert.equal(result.code, 0, result.stderr);
        await stream.ended;
        assert.ok(stream.state.clean, "a clean end, not a cut connection");
        assert.match(stream.state.text, /event: reconnect\ndata: bye\n\n$/);
        assert.ok(!run.output.has(/killed/), run.output.text());
      },
    ));
}

const STREAM_APP = `Deno.serve((_req) => {
  let tick;
  const body = new ReadableStream({
    start(c) { tick = setInterval(() => c.enqueue("data: tick\\n\\n"), 100); },
    cancel() { clearInterval(tick); },
  });
  return new Response(body.pipeThrough(new TextEncoderStream()), {
    headers: { "content-type": "text/event-stream" },
  });
});
`;

Deno.test("a stream that ignores draining: the reload is done without it, status shows it open, one kill line", () =>
  withHotreload(
    { "main.ts": STREAM_APP },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch", "--grace", "3000"],
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      const response = await fetch(`http://127.0.0.1:${port}/`);
      const reader = response.body!.getReader();
      await reader.read();
      const reload = await runCli(["reload"], dir);
      assert.equal(reload.code, 0, reload.stderr);
      // Done while the old worker still streams: it no longer accepts.
      const rows = JSON.parse((await runCli(["status", "--json"], dir)).stdout).children;
      const old = rows.find((row: { generation: number }) => row.generation === 1);
      assert.ok(old, JSON.stringify(rows));
      assert.equal(old.state, "draining");
      await waitFor(async () => {
        const now = JSON.parse((await runCli(["status", "--json"], dir)).stdout).children;
        return now.find((row: { generation: number }) => row.generation === 1)?.open === 1;
      }, "draining (1 open)");
      await run.waitForOutput(/worker 0 \(pid \d+\) is gone \(killed\)/);
      reader.cancel().catch(() => {});
      assert.equal(
        run.output.matches(
          /still busy after its 3000 ms grace with 1 request\(s\) still open; killed/,
        )
          .length,
        1,
      );
      assert.ok(!run.output.has(/exited after draining/), "a killed worker did not drain");
    },
  ));

Deno.test("a blocked event loop: that worker is replaced within --timeout + 2 s, the other keeps answering", () =>
  withHotreload(
    {
      "main.ts": `Deno.serve((req) => {
  if (new URL(req.url).pathname === "/block") while (true) { /* a busy handler */ }
  return new Response("ok");
});
`,
    },
    (port) => serveArgs(port, "-w", "2", "--timeout", "1500"),
    async (run, { port }) => {
      await run.waitForReady(2);
      const blocked = fetch(`http://127.0.0.1:${port}/block`).catch(() => undefined);
      const answered = { ok: 0 };
      let polling = true;
      // Fresh connections, each given up after 300 ms: one that lands on the
      // blocked worker waits, the others must be answered meanwhile.
      const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
      const poll = (async () => {
        while (polling) {
          const ok = await fetch(`http://127.0.0.1:${port}/`, {
            client,
            signal: AbortSignal.timeout(300),
          }).then(async (r) => (await r.text()) === "ok", () => false);
          if (ok) answered.ok++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        client.close();
      })();
      try {
        await run.waitForOutput(
          /worker \d \(pid \d+\) unresponsive for 1\.5 s \(event loop blocked\); replaced/,
          1500 + 2000 + 1000,
        );
      } finally {
        polling = false;
        await poll;
      }
      assert.ok(answered.ok > 0, "the other worker kept answering");
      await blocked;
      for (let i = 0; i < 10; i++) assert.equal((await httpGet(port)).status, 200);
    },
  ));

const HEALTH_APP = (health: number, body: string) =>
  `Deno.serve((req) => new URL(req.url).pathname === "/healthz"
  ? new Response(${health} === 200 ? "ok" : "database unreachable", { status: ${health} })
  : new Response(${JSON.stringify(body)}));
`;

/** Writes code whose /healthz answers 500 (after `prelude`) and reloads: refused, saying what it answered. */
async function reloadToUnhealthy(dir: string, prelude = ""): Promise<void> {
  await Deno.writeTextFile(`${dir}/main.ts`, prelude + HEALTH_APP(500, "v2"));
  const reload = await runCli(["reload"], dir);
  assert.equal(reload.code, 1);
  assert.match(reload.stderr, /reload aborted: worker \d of generation 2 exited/);
  assert.match(reload.stderr, /GET \/healthz answered 500: "database unreachable"/);
}

Deno.test("--ready-path: a new generation answering 500 is refused; the old one keeps serving", () =>
  withHotreload(
    { "main.ts": HEALTH_APP(200, "v1") },
    (port) => serveArgs(port, "-w", "2", "--ready-path", "/healthz", "--ready-timeout", "1500"),
    async (run, { dir, port }) => {
      await run.waitForReady(2);
      await reloadToUnhealthy(dir);
      for (let i = 0; i < 10; i++) assert.equal((await httpGet(port)).body, "v1");
      await waitFor(
        () => taggedPids(run.tag).length === 3,
        "the supervisor and 2 old workers only",
      );
    },
  ));

Deno.test("--ready-path: a new worker whose start took most of --ready-timeout still says what the path answered", () =>
  withHotreload(
    { "main.ts": HEALTH_APP(200, "v1") },
    (port) => serveArgs(port, "-w", "1", "--ready-path", "/healthz", "--ready-timeout", "4000"),
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      // Over 2 s of its 4 s gone before it listens (Deno's start, then 2 s of work): counted from
      // its first check, its patience (3.75 s) would outlast the supervisor's deadline.
      const slowStart =
        "const until = Date.now() + 2000;\nwhile (Date.now() < until) { /* work */ }\n";
      await reloadToUnhealthy(dir, slowStart);
      assert.equal((await httpGet(port)).body, "v1");
    },
  ));

Deno.test("--ready-path works for export default and node:http (Express) apps", async () => {
  const cases: Array<[string, Record<string, string>, string[]]> = [
    [
      "export default",
      {
        "main.ts": `export default { fetch: (req) => new Response(
  new URL(req.url).pathname === "/healthz" ? "healthy" : "app") };\n`,
      },
      ["-N"],
    ],
    [
      "Express",
      {
        "main.ts": `import express from "express";
const app = express();
app.get("/healthz", (req, res) => res.send("healthy"));
app.get("/", (req, res) => res.send("app"));
app.listen(process.env.PORT);
`,
      },
      ["-A"],
    ],
  ];
  for (const [what, files, flags] of cases) {
    const dir = await npmProject(files);
    const port = freePort();
    const run = new Hotreload(
      [
        "run",
        "main.ts",
        ...flags,
        "--port",
        String(port),
        "--no-watch",
        "--ready-path",
        "/healthz",
      ],
      dir,
    );
    try {
      await run.waitForReady(1);
      assert.equal((await httpGet(port)).body, "app", what);
      // One request was made: the count shows it, and nothing for the health check.
      let requests = -1;
      await waitFor(async () => {
        const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
        requests = status.children[0].requests;
        return requests >= 1;
      }, () => `${what}: the request counted (${requests})`);
      assert.equal(requests, 1, `${what}: the health check is not a request`);
    } finally {
      await run.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  }
});
