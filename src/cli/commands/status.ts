/** `hotreload status`: what runs, as a table (100 columns at most) or as stable JSON. */
import { askOverSocket } from "../../control/client.ts";
import type { StatusReport, StatusRow } from "../../control/protocol.ts";
import { parseControlArgs } from "../control_args.ts";
import { STATUS_HELP } from "../help.ts";

export async function statusCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("status", STATUS_HELP, argv);
  if (!args) return 0;
  const { values } = args;
  const reply = await askOverSocket(values, { cmd: "status" });
  const report = reply.status!;
  console.log(values.json ? JSON.stringify(report, null, 2) : formatStatus(report));
  return 0;
}

/** `3m12s`, `41s`, `2h05m`. */
export function formatUptime(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "-";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) {
    return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, "0")}s`;
  }
  const minutes = Math.floor(seconds / 60);
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

const COLUMNS: Array<[string, number, (row: StatusRow) => string]> = [
  ["ROLE", 8, (row) => row.role],
  ["NAME", 14, (row) => String(row.id)],
  ["PID", 8, (row) => row.pid === null ? "-" : String(row.pid)],
  ["STATE", 17, (row) => row.open === null ? row.state : `${row.state} (${row.open} open)`],
  ["GEN", 4, (row) => row.generation === null ? "-" : String(row.generation)],
  ["UPTIME", 7, (row) => formatUptime(row.uptimeMs)],
  ["RESTARTS", 9, (row) => String(row.restarts)],
  ["RSS MB", 7, (row) => row.rssBytes === null ? "-" : (row.rssBytes / 2 ** 20).toFixed(1)],
  ["CPU %", 6, (row) => row.cpuPercent === null ? "-" : row.cpuPercent.toFixed(1)],
  ["REQUESTS", 9, (row) => row.requests === null ? "-" : String(row.requests)],
];

/** The ports the workers listen on, when more than the main port (`status --json`: per worker). */
function listening(port: number | null, bound: number[]): string {
  const others = bound.filter((p) => p !== port);
  if (others.length === 0) return "";
  if (port !== null) return ` (also ${others.join(", ")})`;
  return ` on port${bound.length > 1 ? "s" : ""} ${bound.join(", ")}`;
}

/** The human table: a header about the supervisor, then one row per child. */
export function formatStatus(report: StatusReport): string {
  const s = report.supervisor;
  const lines = [
    `${s.name}: supervisor pid ${s.pid}, up ${formatUptime(s.uptimeMs)}, ` +
    `${(s.rssBytes / 2 ** 20).toFixed(1)} MB, ${s.workers} worker(s)` +
    (s.port === null ? "" : ` on port ${s.port}`) + listening(s.port, s.boundPorts) +
    `, generation ${s.generation}`,
    `watching: ${s.watcher ?? "off"}; handover: ${s.handover ?? "-"}` +
    (s.reloading ? "; reload in progress" : ""),
    `last reload: ${s.lastReload ? truncate(s.lastReload.message, 85) : "none"}`,
    ...(s.succeeded
      ? [
        `succeeded supervisor pid ${s.succeeded.pid}${versionOf(s.succeeded.version)} ` +
        `(died; its ${s.succeeded.workers} worker(s) drained)`,
      ]
      : []),
    ...(s.tookOver
      ? [
        `took over from supervisor pid ${s.tookOver.pid}${versionOf(s.tookOver.version)}, ` +
        `${s.tookOver.afterMs} ms after start`,
      ]
      : []),
    "",
    COLUMNS.map(([title, width]) => title.padEnd(width)).join(" ").trimEnd(),
    ...report.children.map((row) =>
      COLUMNS.map(([, width, cell]) => truncate(cell(row), width).padEnd(width)).join(" ").trimEnd()
    ),
  ];
  return lines.join("\n");
}

/** ` (hotreload 1.2.0)`, or nothing when the version is not known. */
function versionOf(version: string | null | undefined): string {
  return version ? ` (hotreload ${version})` : "";
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}
