/** serveLogs over a real unix socket pair: backlog, following, slow readers, the end, limits. */
import assert from "node:assert/strict";
import { OutputBuffer } from "../log/output_buffer.ts";
import { Followers, MAX_FOLLOWERS, readJsonLines, serveLogs } from "./logs_stream.ts";

/** A connected pair: the server's side served by serveLogs, the client's returned. */
async function pair(
  request: { lines: number; follow?: boolean },
  buffer: OutputBuffer,
  followers: Followers,
): Promise<{ client: Deno.UnixConn; served: Promise<void>; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const accepted = listener.accept();
  const client = await Deno.connect({ transport: "unix", path });
  const server = await accepted;
  // As the control server does: the connection closes once served.
  const served = serveLogs(server, request, buffer, followers).finally(() => {
    try {
      server.close();
    } catch { /* closed */ }
  });
  return {
    client,
    served,
    async cleanup() {
      try {
        client.close();
      } catch { /* closed */ }
      await served;
      listener.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** Reads messages until `until` says enough (or the stream ends). */
function collect(
  client: Deno.UnixConn,
): { messages: Record<string, unknown>[]; ended: Promise<void> } {
  const messages: Record<string, unknown>[] = [];
  return { messages, ended: readJsonLines(client, (message) => messages.push(message)) };
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("logs: the last n lines, then the connection closes", async () => {
  const buffer = new OutputBuffer();
  for (let i = 0; i < 10; i++) buffer.push(`line ${i}`);
  const { client, cleanup } = await pair({ lines: 3 }, buffer, new Followers());
  try {
    const { messages, ended } = collect(client);
    await ended;
    assert.deepEqual(messages, [{ ok: true, lines: ["line 7", "line 8", "line 9"] }]);
  } finally {
    await cleanup();
  }
});

Deno.test("logs -f: new lines follow, and the end when the followers are ended", async () => {
  const buffer = new OutputBuffer();
  buffer.push("old");
  const followers = new Followers();
  const { client, served, cleanup } = await pair({ lines: 1, follow: true }, buffer, followers);
  try {
    const { messages, ended } = collect(client);
    await until(() => messages.length === 1);
    buffer.push("new 1");
    buffer.push("new 2");
    await until(() => messages.length === 3);
    assert.equal(followers.size, 1);
    followers.endAll("stopped");
    await ended;
    await served;
    assert.deepEqual(messages, [
      { ok: true, lines: ["old"] },
      { line: "new 1" },
      { line: "new 2" },
      { end: "stopped" },
    ]);
    assert.equal(followers.size, 0);
  } finally {
    await cleanup();
  }
});

Deno.test("logs -f: a client that goes away is forgotten", async () => {
  const buffer = new OutputBuffer();
  const followers = new Followers();
  const { client, served, cleanup } = await pair({ lines: 0, follow: true }, buffer, followers);
  try {
    const { messages } = collect(client);
    await until(() => messages.length === 1);
    client.close();
    await served;
    assert.equal(followers.size, 0);
    buffer.push("after");
  } finally {
    await cleanup();
  }
});

Deno.test("logs -f: a reader that does not read gets a count of the lines it missed", async () => {
  const buffer = new OutputBuffer(100_000, 64 * 1024 * 1024);
  const followers = new Followers();
  const { client, cleanup } = await pair({ lines: 0, follow: true }, buffer, followers);
  try {
    // Nobody reads: the socket's buffers fill, then the follower's pending lines (1 MB).
    for (let i = 0; i < 3000; i++) buffer.push(`${i} ${"x".repeat(2000)}`);
    const { messages } = collect(client);
    const lines = () => messages.filter((m) => typeof m.line === "string").length;
    const dropped = () => messages.reduce((n, m) => n + (Number(m.dropped) || 0), 0);
    // Every line comes, or is counted as dropped; the newest are the ones dropped.
    await until(() => lines() + dropped() === 3000);
    assert.ok(dropped() > 0, "some lines were dropped");
    assert.ok(lines() < 1000, `${lines()} lines waited for the reader`);
    assert.equal(messages.find((m) => typeof m.line === "string")?.line, `0 ${"x".repeat(2000)}`);
  } finally {
    followers.endAll("stopped");
    await cleanup();
  }
});

Deno.test(`logs -f: at most ${MAX_FOLLOWERS} follow at once; the next is refused in one line`, async () => {
  const buffer = new OutputBuffer();
  const followers = new Followers();
  const pairs = [];
  try {
    for (let i = 0; i < MAX_FOLLOWERS; i++) {
      const p = await pair({ lines: 0, follow: true }, buffer, followers);
      pairs.push(p);
      const { messages } = collect(p.client);
      await until(() => messages.length === 1);
    }
    const refused = await pair({ lines: 0, follow: true }, buffer, followers);
    pairs.push(refused);
    const { messages, ended } = collect(refused.client);
    await refused.served;
    await ended;
    assert.equal(messages.length, 1);
    assert.equal(messages[0].ok, false);
    assert.match(String(messages[0].error), /^8 clients already follow this instance's output/);
  } finally {
    followers.endAll("stopped");
    for (const p of pairs) await p.cleanup();
  }
});
