/**
 * DashboardServer over real sockets (testing.ts's serveDashboard, the
 * metrics server's bounds): nothing is sampled while no page listens, at most
 * one update a second to a page, pages beyond the limit refused, rebound Host
 * names refused, other paths left to the metrics server.
 */
import assert from "node:assert/strict";
import { DashboardServer, hostAllowed, parseHead } from "./server.ts";
import { DashboardState } from "./state.ts";
import { serveDashboard, statusReport, workerRow } from "./testing.ts";

async function request(port: number, head: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(head));
  let text = "";
  const buffer = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(buffer).catch(() => null);
    if (n === null) break;
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  conn.close();
  return text;
}

/** An open event stream: its text so far, and how to leave. */
async function openStream(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(
    new TextEncoder().encode("GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"),
  );
  const stream = { text: "", ended: false, close: () => conn.close() };
  (async () => {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await conn.read(buffer).catch(() => null);
      if (n === null) break;
      stream.text += new TextDecoder().decode(buffer.subarray(0, n));
    }
    stream.ended = true;
  })();
  return stream;
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function fixture() {
  const state = new DashboardState();
  const calls: number[] = [];
  let idle = 0;
  const dashboard = new DashboardServer({
    snapshot: () => {
      calls.push(performance.now());
      state.observe(statusReport([workerRow(0, 101)]), Date.now());
      return state.update(Date.now());
    },
    idle: () => idle++,
    maxClients: 2,
    intervalMs: 200,
  });
  const served = serveDashboard(dashboard);
  return { dashboard, served, calls, idle: () => idle };
}

Deno.test("dashboard server: no snapshot without a page; a page gets one at once, then one per interval; none once it leaves", async () => {
  const { dashboard, served, calls, idle } = fixture();
  try {
    const page = await request(served.port, "GET / HTTP/1.1\r\nhost: localhost:9\r\n\r\n");
    assert.match(page, /^HTTP\/1\.1 200 OK/);
    assert.match(page, /content-security-policy: default-src 'none'/);
    assert.match(page, /<script type="module" src="page.js">/);
    assert.equal(calls.length, 0, "serving the page samples nothing");

    const stream = await openStream(served.port);
    await until(() => (stream.text.match(/^data: /gm) ?? []).length >= 3, "three updates");
    assert.equal(dashboard.clients, 1);
    assert.equal(dashboard.scheduled, true);
    for (let i = 1; i < calls.length; i++) {
      assert.ok(calls[i] - calls[i - 1] >= 190, `updates ${calls[i] - calls[i - 1]} ms apart`);
    }
    const update = JSON.parse(stream.text.match(/^data: (.*)$/m)![1]);
    assert.equal(update.type, "hotreload.dashboard.update");
    stream.close();
    await until(() => dashboard.clients === 0, "the page to leave");
    assert.equal(idle(), 1, "idle once the last page left");
    assert.equal(dashboard.scheduled, false, "no timer left: nothing will sample");
  } finally {
    served.close();
  }
});

Deno.test("dashboard server: pages beyond the limit, rebound names and other methods are refused; other paths are not its own", async () => {
  const { dashboard, served } = fixture();
  try {
    const streams = [await openStream(served.port), await openStream(served.port)];
    await until(() => dashboard.clients === 2, "two pages");
    const third = await request(served.port, "GET /events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    assert.match(third, /^HTTP\/1\.1 503 /);
    const rebound = await request(
      served.port,
      "GET / HTTP/1.1\r\nhost: evil.example:8000\r\n\r\n",
    );
    assert.match(rebound, /^HTTP\/1\.1 421 /);
    const post = await request(served.port, "POST /events HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    assert.match(post, /^HTTP\/1\.1 405 /);
    const other = await request(served.port, "GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    assert.match(other, /^HTTP\/1\.1 404 /, "left to the metrics server");
    for (const stream of streams) stream.close();
    await until(() => dashboard.clients === 0, "the pages to leave");
  } finally {
    served.close();
  }
});

Deno.test("dashboard server: closing ends every stream", async () => {
  const { dashboard, served } = fixture();
  const stream = await openStream(served.port);
  await until(() => dashboard.clients === 1, "a page");
  served.close();
  await until(() => stream.ended, "the stream to end");
  assert.equal(dashboard.clients, 0);
});

Deno.test("dashboard server: Host names an address, localhost or the bound host", () => {
  assert.equal(hostAllowed(undefined), true);
  assert.equal(hostAllowed("127.0.0.1:9090"), true);
  assert.equal(hostAllowed("[::1]:9090"), true);
  assert.equal(hostAllowed("LOCALHOST:9090"), true);
  assert.equal(hostAllowed("evil.example"), false);
  assert.equal(hostAllowed("metrics.internal:9090", "metrics.internal"), true);
  assert.deepEqual(parseHead("GET /events?x=1 HTTP/1.1\r\nHost: a:1\r\n\r\n"), {
    method: "GET",
    path: "/events",
    host: "a:1",
  });
});
