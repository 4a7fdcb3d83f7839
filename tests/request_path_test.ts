/**
 * The request path under stress, end to end: out of file descriptors (the
 * worker keeps serving once they free up, for Deno.serve and node:http),
 * WebSockets across a reload (closed with a code, never cut), a stream of
 * new code relayed by an old worker past its grace, and node:http requests
 * sent on by a draining worker (bodies, every Set-Cookie, the client's
 * address).
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, makeProject, runCli, serveArgs, waitFor } from "./helpers.ts";

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
