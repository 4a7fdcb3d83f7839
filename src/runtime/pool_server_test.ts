/**
 * pool_server.ts with real sockets, Deno's own server and the supervisor's
 * real release (handover/release.ts, on this very process): a released
 * listener takes no new connection while the ones it has are answered. An
 * accept that fails for another reason (EMFILE) is survived by listening
 * again: tests/request_path_test.ts runs a worker out of descriptors.
 */
import assert from "node:assert/strict";
import { Linux } from "../handover/linux.ts";
import { Listeners } from "../handover/release.ts";
import { PoolServer } from "./pool_server.ts";

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

/** Sends one request on `conn` and reads the answer's body (content-length); "" at EOF. */
async function ask(conn: Deno.Conn): Promise<string> {
  await conn.write(REQUEST).catch(() => {});
  const buffer = new Uint8Array(4096);
  let text = "";
  while (true) {
    const head = text.indexOf("\r\n\r\n");
    const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? NaN);
    if (head >= 0 && text.length >= head + 4 + length) return text.slice(head + 4);
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) return text;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
}

async function waitFor(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function recorder() {
  const seen = { released: 0, failed: [] as string[], again: [] as number[], dead: [] as string[] };
  return {
    seen,
    events: {
      released: () => void seen.released++,
      failed: (message: string) => void seen.failed.push(message),
      listeningAgain: (port: number) => void seen.again.push(port),
      dead: (reason: string) => void seen.dead.push(reason),
    },
  };
}

function libc(): Linux {
  const linux = Linux.open();
  if (typeof linux === "string") throw new Error(`this test needs libc through FFI: ${linux}`);
  return linux;
}

/** Deno's own `Deno.serve` (the preload passes the runtime's; tests have no --unstable-net). */
const serve = Deno.serve as unknown as ConstructorParameters<typeof PoolServer>[0];

Deno.test("pool server: a released listener takes no new connection; those it has are answered", async () => {
  const { seen, events } = recorder();
  const server = new PoolServer(
    serve,
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("hi"),
    events,
  );
  const port = server.addr.port;
  const linux = libc();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    assert.equal(await ask(conn), "hi");
    const listeners = new Listeners(linux);
    listeners.remember(Deno.pid, port);
    assert.equal(listeners.release(Deno.pid, [port]), 1, "one listener stopped");
    await waitFor(() => seen.released === 1, "the accept loop to end");
    assert.equal(server.accepting, false);
    await assert.rejects(() => Deno.connect({ hostname: "127.0.0.1", port }), "a new connection");
    assert.equal(await ask(conn), "hi", "the keep-alive connection is still answered");
    assert.deepEqual(seen.failed, [], "an expected end, not a failure");
    await server.shutdown();
    assert.equal(await ask(conn), "", "idle connections close at the shutdown");
    await server.finished;
  } finally {
    conn.close();
    linux.unload();
  }
});
