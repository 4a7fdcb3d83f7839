/**
 * Status reports for the dashboard's tests (state_test.ts, the monit drawing's
 * test, tests/dashboard_page_test.ts): an instance as `status --json` reports
 * it, with the children given. Not imported by hotreload itself.
 */
import type { StatusReport, StatusRow } from "../control/protocol.ts";

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
