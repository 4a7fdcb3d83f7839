/**
 * The request path under stress, end to end: out of file descriptors (the
 * worker keeps serving once they free up, for Deno.serve and node:http),
 * WebSockets across a reload (closed with a code, never cut), a stream of
 * new code relayed by an old worker past its grace, and node:http requests
 * sent on by a draining worker (bodies, every Set-Cookie, the client's
 * address).
 */
import assert from "node:assert/strict";
import { RawConn } from "./differential.ts";
import {
  freePort,
  Hotreload,
  makeProject,
  MOD_URL,
  pidRunning,
  runCli,
  serveArgs,
  waitFor,
} from "./helpers.ts";

/** Holds `count` connections to `port` (as many as the kernel takes), then closes them all. */
async function holdAndRelease(port: number, count: number): Promise<number> {
  const held: Deno.Conn[] = [];
  for (let i = 0; i < count; i++) {
    try {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch { /* refused: the listener is gone for now */ }
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (const conn of held) conn.close();
  return held.length;
}

/** One GET on a new connection, given up after a second (a stalled listener queues it forever). */
async function answers(port: number): Promise<boolean> {
  const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      client,
      signal: AbortSignal.timeout(1000),
    });
    return (await response.text()) === "ok";
  } catch {
    return false;
  } finally {
    client.close();
  }
}

const DENO_APP = `Deno.serve(() => new Response("ok"));\n`;
const NODE_APP = `import http from "node:http";
http.createServer((_request, response) => response.end("ok")).listen(Number(Deno.args[0]));
`;

for (const [kind, app] of [["Deno.serve", DENO_APP], ["node:http", NODE_APP]]) {
  Deno.test(`out of descriptors (ulimit -n 256, 600 connections held), a ${kind} worker serves again once they close`, async () => {
    const dir = await makeProject({ "main.ts": app });
    const port = freePort();
    const run = new Hotreload(serveArgs(port, "--workers", "1", "--", String(port)), dir, {}, [
      "prlimit",
      "--nofile=256:256",
      "--",
    ]);
    try {
      await run.waitForReady(1);
      assert.ok(await answers(port));
      const held = await holdAndRelease(port, 600);
      const released = Date.now();
      await waitFor(() => answers(port), "the worker to answer again");
      console.log(
        `${kind}: ${held} connections held; answering again ${
          Date.now() - released
        } ms after they closed`,
      );
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      assert.equal(status.children[0].state, "ready");
    } finally {
      await run.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** An app whose answers and WebSocket echoes carry its version. */
const versioned = (version: string) => `
Deno.serve((request) => {
  const url = new URL(request.url);
  if (url.pathname === "/ws") {
    const { socket, response } = Deno.upgradeWebSocket(request);
    socket.onmessage = (event) => socket.send("${version}:" + event.data);
    return response;
  }
  if (url.pathname === "/stream") {
    let sent = 0;
    return new Response(new ReadableStream({
      async pull(controller) {
        if (sent === 50) return controller.close();
        await new Promise((resolve) => setTimeout(resolve, 100));
        controller.enqueue(new TextEncoder().encode("${version} chunk " + sent++ + "\\n"));
      },
    }));
  }
  return new Response("${version}");
});
`;

Deno.test("WebSockets across a reload: 20 stay open while their worker drains, then close with 1001, never cut", async () => {
  const dir = await makeProject({ "main.ts": versioned("v1") });
  const port = freePort();
  const run = new Hotreload(serveArgs(port, "--workers", "4"), dir);
  const codes: number[] = [];
  try {
    await run.waitForReady(4);
    const sockets = await Promise.all(
      Array.from({ length: 20 }, () =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`);
          socket.onopen = () => socket.send("hi");
          socket.onmessage = (event) =>
            event.data === "v1:hi" ? resolve(socket) : reject(event.data);
          socket.onerror = () => reject(new Error("WebSocket error"));
          socket.onclose = (event) => codes.push(event.code);
        })),
    );
    // Open past the moment Deno's per-connection server used to close them (10-30 ms).
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length, 20);
    await Deno.writeTextFile(`${dir}/main.ts`, versioned("v2"));
    const reloaded = await runCli(["reload"], dir);
    assert.equal(reloaded.code, 0, reloaded.stderr);
    await waitFor(() => codes.length === 20, () => `20 closes (${codes.length}: ${codes})`);
    console.log(`close codes of 20 WebSockets across a reload: ${JSON.stringify(codes)}`);
    assert.ok(codes.every((code) => code === 1001 || code === 1012), `close codes ${codes}`);
    // A client that reconnects at once reaches new code.
    const again = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const echo = await new Promise((resolve, reject) => {
      again.onopen = () => again.send("hi");
      again.onmessage = (event) => resolve(event.data);
      again.onerror = () => reject(new Error("WebSocket error"));
    });
    again.close();
    assert.equal(echo, "v2:hi");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a stream of new code sent on by an old worker arrives whole, past the old worker's --grace", async () => {
  const dir = await makeProject({ "main.ts": versioned("v1") });
  const port = freePort();
  const run = new Hotreload(
    serveArgs(port, "--workers", "1", "--grace", "1000", "--close-window", "2000"),
    dir,
  );
  try {
    await run.waitForReady(1);
    const conn = await RawConn.open(port);
    try {
      await conn.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
      assert.equal((await conn.response()).body, "v1");
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      const old = status.children[0].pid as number;
      await Deno.writeTextFile(`${dir}/main.ts`, versioned("v2"));
      const reloaded = await runCli(["reload"], dir);
      assert.equal(reloaded.code, 0, reloaded.stderr);
      // The old worker drains from now on; its grace is 1 s, the stream takes 5 s.
      await conn.write(`GET /stream HTTP/1.1\r\nHost: x\r\n\r\n`);
      const answer = await conn.response();
      const chunks = answer.body.trim().split("\n");
      assert.equal(chunks.length, 50, answer.body);
      assert.ok(chunks.every((chunk, i) => chunk === `v2 chunk ${i}`), answer.body);
      assert.ok(answer.headers.includes("connection: close"), answer.headers.join("\n"));
      assert.ok(!run.output.has(/still busy after its 1000 ms grace/), run.output.text());
      await waitFor(() => !pidRunning(old), "the old worker to exit once its relay ended");
    } finally {
      conn.close();
    }
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an answer that comes after its worker left service says Connection: close (Deno.serve and node:http)", async () => {
  // Each app answers once its worker is told to drain (mod.ts's drainSignal): an answer to a
  // request that arrived in service and left after.
  const apps = {
    "Deno.serve": `import { drainSignal } from "${MOD_URL}";
const drained = new Promise((resolve) => drainSignal().addEventListener("abort", resolve));
Deno.serve(async () => {
  await drained;
  return new Response("late");
});
`,
    "node:http": `import http from "node:http";
import { drainSignal } from "${MOD_URL}";
const drained = new Promise((resolve) => drainSignal().addEventListener("abort", resolve));
http.createServer(async (_request, response) => {
  await drained;
  response.end("late");
}).listen(Number(Deno.args[0]));
`,
  };
  for (const [kind, app] of Object.entries(apps)) {
    const dir = await makeProject({ "main.ts": app });
    const port = freePort();
    const run = new Hotreload(serveArgs(port, "--workers", "1", "--", String(port)), dir);
    try {
      await run.waitForReady(1);
      const conn = await RawConn.open(port);
      try {
        // A client that sends its next request at once must be told to use a new connection.
        await conn.write(`GET / HTTP/1.1\r\nHost: x\r\n\r\n`);
        const reloaded = await runCli(["reload"], dir);
        assert.equal(reloaded.code, 0, reloaded.stderr);
        const answer = await conn.response();
        assert.equal(answer.body, "late");
        assert.ok(
          answer.headers.some((line) => /^connection: close$/i.test(line)),
          `${kind}: ${answer.headers.join(", ")}`,
        );
      } finally {
        conn.close();
      }
    } finally {
      await run.cleanup();
      await Deno.remove(dir, { recursive: true });
    }
  }
});
