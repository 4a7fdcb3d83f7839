/**
 * `deno task bench reload`: reloads under load and change-to-new-response
 * latency, side by side in one run, each in its own network namespace where
 * `net.ipv4.tcp_migrate_req` is set as the row says.
 */
import { machine, median, percentile, runInNetns, table } from "./lib.ts";
import { EDIT_SUBJECTS, measureEdits, summary } from "./edit.ts";

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

/**
 * The load rows reload by editing the file, so hotreload watches; they drain
 * as without watching (rolling, a 250 ms close window, no spares) unless the
 * row says "watching defaults": that row shows what the faster switch costs
 * keep-alive clients.
 */
const drain = (handover: "ebpf" | "kernel" | "none", ...more: string[]) => [
  "--options",
  JSON.stringify([
    "--switch",
    "rolling",
    "--close-window",
    "250",
    "--spares",
    "0",
    "--handover",
    handover,
    ...more,
  ]),
];

/**
 * Each row names its handover (src/handover/): "steered" is eBPF steering,
 * "kernel" relies on tcp_migrate_req=1, "none" is neither.
 */
const RUNS: { label: string; args: string[]; migrate: 0 | 1 }[] = [
  {
    label: "hotreload, 4 workers, kernel, tcp_migrate_req=1",
    args: ["--workers", "4", ...drain("kernel")],
    migrate: 1,
  },
  {
    label: "hotreload, 4 workers, steered, tcp_migrate_req=0",
    args: ["--workers", "4", ...drain("ebpf")],
    migrate: 0,
  },
  {
    label:
      "hotreload, 4 workers, kernel, tcp_migrate_req=1, watching defaults (spares, one-step switch, close window 100 ms)",
    args: ["--workers", "4", "--options", JSON.stringify(["--handover", "kernel"])],
    migrate: 1,
  },
  {
    label: "hotreload, 4 workers, Express 5 (node:http), kernel, tcp_migrate_req=1",
    args: ["--workers", "4", "--app", "express", ...drain("kernel")],
    migrate: 1,
  },
  {
    label: "hotreload, 4 workers, none, tcp_migrate_req=0",
    args: ["--workers", "4", ...drain("none")],
    migrate: 0,
  },
  {
    label: "hotreload, 1 worker, kernel, tcp_migrate_req=1",
    args: ["--workers", "1", ...drain("kernel")],
    migrate: 1,
  },
  ...([["ebpf", 0], ["ebpf", 1], ["kernel", 1], ["none", 0]] as const).map(([mode, migrate]) => ({
    label: `hotreload, 4 workers, a new connection per request, ${
      mode === "ebpf" ? "steered" : mode
    }, tcp_migrate_req=${migrate}`,
    args: ["--workers", "4", "--fresh", ...drain(mode)],
    migrate,
  })),
  { label: "deno run --watch", args: ["--mode", "deno-watch", "--workers", "1"], migrate: 1 },
];

/** The edit loop without load: first new answer and every answer new, side by side. */
export async function editLoop(edits: number): Promise<string> {
  const results = [];
  for (const subject of EDIT_SUBJECTS) {
    results.push({ subject, result: await measureEdits(subject, edits) });
  }
  const anchor = results.find((r) => r.subject.label === "deno run --watch")!.result;
  const anchorMs = median(anchor.all);
  const missed = results.filter(({ result }) => result.idleMissed > 0)
    .map(({ subject, result }) => `${result.idleMissed} of ${subject.label}'s`);
  return [
    `### Save → new answers (${edits} edits each, fresh connections, no load)`,
    "",
    machine(),
    "",
    table(
      [
        "server",
        "first new answer, median / p95 ms",
        "every answer new, median / p95 ms",
        "every answer new ÷ deno run --watch",
      ],
      results.map(({ subject, result }) => [
        subject.label,
        summary(result.first),
        summary(result.all),
        (median(result.all) / anchorMs).toFixed(2),
      ]),
    ),
    "",
    "The client asks on a new connection every 2 ms. Each save is made once the server is idle " +
    "again (as many processes as before the first save, under one clock tick of CPU among them " +
    "in 250 ms)" +
    (missed.length > 0 ? `; ${missed.join(", ")} saves waited 10 s for it in vain.` : "."),
  ].join("\n");
}

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
  const edits = await editLoop(reloads);
  return [
    edits,
    "",
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
