/**
 * Status reports for the dashboard's tests (state_test.ts, the monit drawing's
 * test, tests/dashboard_page_test.ts): an instance as `status --json` reports
 * it, with the children given, and a server that hands requests to a
 * DashboardServer as the `--metrics` port will. Not imported by hotreload itself.
 */
import { acceptBounded, closeQuietly } from "../control/accept.ts";
import type { StatusReport, StatusRow } from "../control/protocol.ts";
import type { DashboardServer } from "./server.ts";

/** A worker row: ready, generation 1, unless `fields` say otherwise. */
export function workerRow(id: number, pid: number, fields: Partial<StatusRow> = {}): StatusRow {
  return {
    role: "worker",
    id,
    pid,
    state: "ready",
    generation: 1,
    uptimeMs: 60_000,
    restarts: 0,
    rssBytes: 40 * 2 ** 20,
    cpuPercent: 0.5,
    requests: 0,
    open: null,
    ports: [8000],
    ...fields,
  };
}

/** A custom process's row. */
export function processRow(id: string, pid: number, fields: Partial<StatusRow> = {}): StatusRow {
  return {
    role: "process",
    id,
    pid,
    state: "ready",
    generation: 1,
    uptimeMs: 60_000,
    restarts: 0,
    rssBytes: 30 * 2 ** 20,
    cpuPercent: 0,
    requests: null,
    open: null,
    ports: null,
    ...fields,
  };
}

/** A running instance "api" of `children`, with `supervisor` fields replaced. */
export function statusReport(
  children: StatusRow[],
  supervisor: Partial<StatusReport["supervisor"]> = {},
): StatusReport {
  return {
    supervisor: {
      name: "api",
      pid: 41230,
      uptimeMs: 192_000,
      phase: "running",
      entry: "main.ts",
      port: 8000,
      host: null,
      boundPorts: [8000],
      workers: children.filter((row) => row.role === "worker").length,
      generation: Math.max(1, ...children.map((row) => row.generation ?? 1)),
      watcher: "events",
      graphs: { current: true, workers: 3, processes: {} },
      succeeded: null,
      tookOver: null,
      handover: "ebpf",
      reloading: false,
      lastReload: null,
      rssBytes: 60 * 2 ** 20,
      droppedLines: 0,
      ...supervisor,
    },
    children,
  };
}

/**
 * Serves `dashboard` on 127.0.0.1 the way the `--metrics` port will: the
 * metrics server's accept loop and bounds (acceptBounded, 16 connections, a
 * request head of at most 8 KiB within 5 s), the dashboard's paths handed to
 * `dashboard.handle()` once the head is read, anything else 404. The
 * connection is closed once the answer settles, as the metrics server does.
 */
export function serveDashboard(dashboard: DashboardServer): { port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let closed = false;
  acceptBounded(listener, {
    max: 16,
    closed: () => closed,
    serve: async (conn) => {
      const timer = setTimeout(() => closeQuietly(conn), 5_000);
      const head = await readHead(conn);
      // The head is in: an event stream outlives the read timeout.
      clearTimeout(timer);
      if (head === undefined) return;
      if (await dashboard.handle(conn, head)) return;
      const body = "not found: scrape /metrics\n";
      await conn.write(
        new TextEncoder().encode(
          `HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}` +
            `\r\nconnection: close\r\n\r\n${body}`,
        ),
      );
    },
  });
  return {
    port: (listener.addr as Deno.NetAddr).port,
    close() {
      closed = true;
      dashboard.close();
      try {
        listener.close();
      } catch { /* closed */ }
    },
  };
}

/** The request head up to its blank line (8 KiB at most), as the metrics server reads it. */
async function readHead(conn: Deno.Conn): Promise<string | undefined> {
  const buffer = new Uint8Array(8 * 1024);
  let length = 0;
  while (length < buffer.length) {
    const n = await conn.read(buffer.subarray(length)).catch(() => null);
    if (n === null) return undefined;
    length += n;
    const text = new TextDecoder().decode(buffer.subarray(0, length));
    if (text.includes("\r\n\r\n") || text.includes("\n\n")) return text;
  }
  return undefined;
}
