/**
 * pool_server.ts with real sockets on a free loopback port: closing its
 * listener keeps the connections it accepted (Deno's own server drops the
 * ones it had not read a request from yet; the first test shows why this
 * module exists).
 */
import assert from "node:assert/strict";
import { canServe, poolServe } from "./pool_server.ts";

const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");

/** Reads one HTTP/1.1 response head and body (content-length), or "" at EOF. */
async function readResponse(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let text = "";
  while (true) {
    const head = text.indexOf("\r\n\r\n");
    const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? NaN);
    if (head >= 0 && text.length >= head + 4 + length) return text;
    const n = await conn.read(buffer);
    if (n === null) return text;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
}

/** Polls `check` every 10 ms until true, for at most 5 s. */
async function waitFor(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Deno.listen without `reusePort` (unstable: a worker runs with --unstable-net, tests do not). */
function listen({ reusePort: _, ...options }: Record<string, unknown>): Deno.Listener {
  return Deno.listen(options as unknown as Deno.TcpListenOptions);
}

Deno.test("pool server: Deno's own server drops a connection accepted but not yet read", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("hi"),
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    await new Promise((resolve) => setTimeout(resolve, 50)); // accepted by now (loopback)
    const closing = server.shutdown();
    await conn.write(REQUEST).catch(() => {});
    assert.equal(
      await readResponse(conn).catch(() => ""),
      "",
      "Deno's server answered it after all",
    );
    await closing;
  } finally {
    conn.close();
  }
});

Deno.test("pool server: stopAccepting keeps every accepted connection; shutdown ends them", async () => {
  let handled = 0;
  const server = poolServe(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response(`answer ${++handled}`),
    listen,
  );
  const port = server.addr.port;
  const idle = await Deno.connect({ hostname: "127.0.0.1", port }); // keep-alive, idle
  const unread = await Deno.connect({ hostname: "127.0.0.1", port }); // nothing sent yet
  try {
    await idle.write(REQUEST);
    assert.match(await readResponse(idle), /answer 1$/);
    await new Promise((resolve) => setTimeout(resolve, 50)); // `unread` accepted by now

    server.stopAccepting();
    // Refused, or reset when it met the listener as it closed: never served.
    await assert.rejects(
      Deno.connect({ hostname: "127.0.0.1", port }).then((conn) => conn.close()),
    );
    await unread.write(REQUEST);
    assert.match(await readResponse(unread), /^HTTP\/1\.1 200[\s\S]*answer 2$/);
    await idle.write(REQUEST);
    assert.match(await readResponse(idle), /^HTTP\/1\.1 200[\s\S]*answer 3$/);

    let finished = false;
    server.finished.then(() => finished = true);
    await server.shutdown();
    await waitFor(() => finished);
    assert.equal(await readResponse(idle), "", "an idle connection is closed at shutdown");
  } finally {
    idle.close();
    unread.close();
  }
});

Deno.test("pool server: an option only Deno's own server knows keeps Deno's own", () => {
  assert.equal(canServe({ port: 1, hostname: "h", onListen() {}, signal: undefined }), true);
  assert.equal(canServe({ port: 1, automaticCompression: false }), false);
  assert.equal(canServe({ path: "/tmp/socket" }), false);
});
