/**
 * The `--metrics` port: `GET /metrics` answered by the supervisor itself, over
 * a minimal HTTP/1.1 server of its own instead of Deno.serve, which has no
 * connection limit and no read timeout: any scraper, or anyone who can reach
 * the port, may connect, so connections are capped (MAX_METRICS_CONNECTIONS),
 * a request head must arrive within METRICS_READ_TIMEOUT_MS and fit in
 * MAX_HEAD_BYTES, every answer closes its connection, and running out of
 * descriptors (EMFILE) only delays the next accept.
 */
import { acceptBounded } from "../control/accept.ts";
import { HotreloadError } from "../errors.ts";
import { log } from "../log/mod.ts";

/** Most scrapes served at once (Prometheus makes one at a time per target). */
export const MAX_METRICS_CONNECTIONS = 16;
/** How long a client may take to send its request head. */
export const METRICS_READ_TIMEOUT_MS = 5_000;
const MAX_HEAD_BYTES = 8 * 1024;
const encoder = new TextEncoder();

/** A running metrics server. */
export interface MetricsServer {
  close(): void;
}

/**
 * Answers a request on the metrics port other than `/metrics` (the dashboard,
 * src/dashboard/server.ts): true when it did, false at once, having read and
 * written nothing, when the path is not its own.
 */
export type ExtraRoutes = (conn: Deno.Conn, head: string) => Promise<boolean>;

/**
 * Serves `render()` as `GET /metrics` on `address`, and what `extra` answers
 * (the dashboard); warns once when it is not loopback.
 */
export function serveMetrics(
  address: { hostname: string; port: number },
  render: () => string,
  extra?: ExtraRoutes,
): MetricsServer {
  let listener: Deno.Listener;
  try {
    listener = Deno.listen({ hostname: address.hostname, port: address.port });
  } catch (error) {
    throw new HotreloadError(
      `cannot serve --metrics on ${address.hostname}:${address.port}: ${
        (error as Error).message.split("\n")[0]
      }; choose another port`,
    );
  }
  if (!/^(127\.|::1$|localhost$)/.test(address.hostname)) {
    log.warn(
      "supervisor.metrics-exposed",
      `--metrics listens on ${address.hostname}:${address.port}, beyond loopback: anyone who ` +
        `can reach it reads the instance's state; bind 127.0.0.1 unless a scraper elsewhere needs it`,
      { role: "supervisor" },
    );
  }
  let closed = false;
  acceptBounded(listener, {
    max: MAX_METRICS_CONNECTIONS,
    closed: () => closed,
    serve: (conn) => answer(conn, render, extra),
  });
  return {
    close() {
      closed = true;
      try {
        listener.close();
      } catch { /* already closed */ }
    },
  };
}

/** Reads one request head (bounded in time and size) and answers it; the caller closes. */
async function answer(
  conn: Deno.Conn,
  render: () => string,
  extra?: ExtraRoutes,
): Promise<void> {
  const timer = setTimeout(() => {
    try {
      conn.close(); // a client too slow to ask: the pending read fails
    } catch { /* closed */ }
  }, METRICS_READ_TIMEOUT_MS);
  try {
    const head = await readHead(conn);
    if (head === undefined) return;
    // The head is in: a dashboard's event stream outlives the read timeout.
    clearTimeout(timer);
    if (extra && await extra(conn, head)) return;
    const [method, target] = head.split("\r\n")[0].split(" ");
    const path = (target ?? "").split("?")[0];
    if (method !== "GET" && method !== "HEAD") {
      return await respond(conn, 405, "text/plain", "scrape with GET /metrics\n", method);
    }
    if (path !== "/metrics") {
      return await respond(conn, 404, "text/plain", "not found: scrape /metrics\n", method);
    }
    await respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", render(), method);
  } finally {
    clearTimeout(timer);
  }
}

/** The request head up to its blank line, or undefined (closed, too large, or not HTTP). */
async function readHead(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(MAX_HEAD_BYTES);
  let length = 0;
  while (length < buffer.length) {
    const n = await conn.read(buffer.subarray(length));
    if (n === null) return undefined;
    length += n;
    const text = new TextDecoder().decode(buffer.subarray(0, length));
    if (text.includes("\r\n\r\n") || text.includes("\n\n")) return text;
  }
  return undefined;
}

async function respond(
  conn: Deno.Conn,
  status: number,
  type: string,
  body: string,
  method: string,
): Promise<void> {
  const bytes = encoder.encode(body);
  const reason = { 200: "OK", 404: "Not Found", 405: "Method Not Allowed" }[status] ?? "";
  const head = `HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${type}\r\n` +
    `content-length: ${bytes.length}\r\nconnection: close\r\n\r\n`;
  const out = method === "HEAD" ? encoder.encode(head) : concat(encoder.encode(head), bytes);
  for (let written = 0; written < out.length;) written += await conn.write(out.subarray(written));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
