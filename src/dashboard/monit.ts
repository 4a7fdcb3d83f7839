/**
 * `hotreload monit`'s screen, drawn from a {@link DashboardUpdate} (the web
 * dashboard's data, made from `status` once a second by the command): the
 * instance, the last reload, one row per child as `status` shows it with its
 * requests/s, and a requests/s sparkline per worker. Pure: it returns the
 * lines, each cut to the terminal's width; the command writes them in place.
 * Nothing the app printed is drawn (only status's own fields and file names).
 */
import type { DashboardRow, DashboardUpdate, WorkerSeries } from "./contract.ts";

/** The sparkline's levels, lowest first (a blank is "not known"). */
const LEVELS = "▁▂▃▄▅▆▇█";

const COLUMNS: Array<[string, number, (row: DashboardRow) => string]> = [
  ["ROLE", 7, (row) => row.role],
  ["NAME", 10, (row) => String(row.id)],
  ["PID", 8, (row) => row.pid === null ? "-" : String(row.pid)],
  ["STATE", 13, (row) => row.open === null ? row.state : `${row.state} (${row.open})`],
  ["GEN", 4, (row) => row.generation === null ? "-" : String(row.generation)],
  ["UPTIME", 7, (row) => uptime(row.uptimeMs)],
  ["RESTARTS", 8, (row) => String(row.restarts)],
  ["RSS MB", 7, (row) => row.rssBytes === null ? "-" : (row.rssBytes / 2 ** 20).toFixed(1)],
  ["CPU %", 6, (row) => row.cpuPercent === null ? "-" : row.cpuPercent.toFixed(1)],
  ["REQ/S", 7, (row) => row.requestsPerSecond === null ? "-" : row.requestsPerSecond.toFixed(1)],
];

/** `3m12s`, `41s`, `2h05m`, as `status` writes them. */
function uptime(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "-";
  const seconds = Math.floor(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (seconds < 3600) return `${minutes}m${String(seconds % 60).padStart(2, "0")}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, "0")}m`;
}

/**
 * A sparkline of the last `width` values, scaled to `max` (the busiest
 * worker's peak, so the lines compare): a blank where the value is unknown.
 */
export function sparkline(
  values: ReadonlyArray<number | null>,
  width: number,
  max: number,
): string {
  const shown = values.slice(-width);
  const line = shown.map((value) => {
    if (value === null) return " ";
    if (max <= 0) return LEVELS[0];
    const level = Math.round((value / max) * (LEVELS.length - 1));
    return LEVELS[Math.min(LEVELS.length - 1, Math.max(0, level))];
  }).join("");
  return line.padStart(width);
}

/** Cuts `text` to `width` columns (every character drawn here is one column wide). */
function fit(text: string, width: number): string {
  const chars = [...text];
  return chars.length <= width ? text : chars.slice(0, Math.max(0, width - 1)).join("") + "…";
}

/**
 * The screen for `update`, `columns` wide: a heading, the last reload, the
 * table with a sparkline column (requests/s over the last points one a
 * second) when there is room, and the key to leave.
 */
export function drawMonit(update: DashboardUpdate, columns: number): string[] {
  const s = update.instance;
  const last = update.reloads[0];
  const lines = [
    `${s.name} · ${s.entry} · port ${s.port ?? "-"} · ${s.workers} worker(s) · generation ` +
    `${s.generation}${s.reloading ? " (reloading)" : ""} · up ${uptime(s.uptimeMs)}`,
    `handover ${s.handover ?? "-"} · watching ${s.watcher ?? "off"} · supervisor pid ${s.pid}, ` +
    `${(s.rssBytes / 2 ** 20).toFixed(1)} MB`,
    last
      ? `last reload: generation ${last.generation}, ${last.reason || last.trigger}: ${
        last.outcome === "running"
          ? "running"
          : last.outcome === "done"
          ? `done${last.allNewMs === null ? "" : ` (all new after ${last.allNewMs} ms)`}`
          : `aborted: ${last.message ?? ""}`
      }`
      : "last reload: none",
    "",
  ];
  const table = COLUMNS.map(([title, width]) => title.padEnd(width)).join(" ");
  const room = columns - table.length - 1;
  const sparkWidth = Math.min(60, room);
  const series = new Map<number, WorkerSeries>(
    update.history.series.map((one) => [one.pid, one]),
  );
  let max = 0;
  for (const one of update.history.series) {
    for (const value of one.requestsPerSecond.slice(-Math.max(sparkWidth, 0))) {
      if (value !== null && value > max) max = value;
    }
  }
  const sparks = sparkWidth >= 8;
  lines.push(sparks ? `${table} REQ/S, LAST ${sparkWidth} S (max ${max.toFixed(1)})` : table);
  for (const row of update.children) {
    const cells = COLUMNS.map(([, width, cell]) => fit(cell(row), width).padEnd(width)).join(" ");
    const values = row.pid === null ? undefined : series.get(row.pid)?.requestsPerSecond;
    lines.push(sparks && values ? `${cells} ${sparkline(values, sparkWidth, max)}` : cells);
  }
  lines.push("", "q or Ctrl-C to leave");
  return lines.map((line) => fit(line.trimEnd(), columns));
}
