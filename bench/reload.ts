/**
 * `deno task bench reload`: reloads under load and change-to-new-response
 * latency, side by side in one run, each in its own network namespace where
 * `net.ipv4.tcp_migrate_req` is set as the row says.
 */
import { machine, median, percentile, runInNetns, table } from "./lib.ts";

interface ScenarioResult {
  mode: "hotreload" | "deno-watch";
  workers: number;
  ok: number;
  failed: number;
  kinds: Record<string, number>;
  latencies: number[];
  seconds: number;
}

const SCENARIO = new URL("./reload_scenario.ts", import.meta.url).pathname;

const RUNS: { label: string; args: string[]; migrate: 0 | 1 }[] = [
  { label: "hotreload, 4 workers, tcp_migrate_req=1", args: ["--workers", "4"], migrate: 1 },
  {
    label: "hotreload, 4 workers, Express 5 (node:http), tcp_migrate_req=1",
    args: ["--workers", "4", "--app", "express"],
    migrate: 1,
  },
  { label: "hotreload, 4 workers, tcp_migrate_req=0", args: ["--workers", "4"], migrate: 0 },
  { label: "hotreload, 1 worker, tcp_migrate_req=1", args: ["--workers", "1"], migrate: 1 },
  {
    label: "hotreload, 4 workers, tcp_migrate_req=1, a new connection per request",
    args: ["--workers", "4", "--fresh"],
    migrate: 1,
  },
  { label: "deno run --watch", args: ["--mode", "deno-watch", "--workers", "1"], migrate: 1 },
];

export async function benchReload(reloads = 20, clients = 50): Promise<string> {
  const rows: (string | number)[][] = [];
  for (const run of RUNS) {
    const result = await runInNetns<ScenarioResult>(
      SCENARIO,
      [...run.args, "--reloads", String(reloads), "--clients", String(clients)],
      { migrate: run.migrate },
    );
    const kinds = Object.entries(result.kinds).map(([kind, n]) => `${n}× ${kind.slice(0, 60)}`);
    rows.push([
      run.label,
      result.ok,
      result.failed,
      `${(100 * result.failed / (result.ok + result.failed)).toFixed(3)} %`,
      Math.round(median(result.latencies)),
      Math.round(percentile(result.latencies, 95)),
      kinds.join("; ") || "-",
    ]);
  }
  return [
    `### Reload under load (${reloads} reloads, ${clients} clients, keep-alive unless the row says)`,
    "",
    machine(),
    "",
    table(
      [
        "server",
        "ok requests",
        "failed",
        "failed %",
        "change→new response median ms",
        "p95 ms",
        "failures",
      ],
      rows,
    ),
  ].join("\n");
}

if (import.meta.main) console.log(await benchReload());
