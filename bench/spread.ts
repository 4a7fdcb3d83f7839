/**
 * `deno task bench spread`: how evenly keep-alive load lies over 4 workers
 * after a reload, in every handover mode, watching and not.
 *
 * A hello app, 4 workers; wrk -t2 -c16 (keep-alive, not pinned); 2 s in, a
 * reload (an edit while watching, `hotreload reload` when not); once
 * `status` says it is done, the requests each new worker serves from 1 s to
 * 5 s after, as `status` counts them. Reported per run: max ÷ mean and min ÷
 * mean, and whether every worker is within ±25 % of the mean; and the
 * connections per worker the log last said were spread (rebalancing,
 * src/supervisor/rebalance.ts; steered, the program hands connections out in
 * turn and nothing is said). Each case runs in a network namespace of its
 * own (tcp_migrate_req=1 for `kernel`, 0 otherwise); the cases alternate
 * within each round. Needs root (namespaces, steering).
 */
import { machine, runInNetns, table } from "./lib.ts";
import { freePort, Hotreload, makeProject, runCli, waitFor } from "../tests/helpers.ts";
import type { StatusReport } from "../src/control/protocol.ts";

const ROUNDS = 3;
const WORKERS = 4;
const CONNECTIONS = 16;
const RELOAD_AT_MS = 2000;
const FROM_MS = 1000;
const WINDOW_MS = 4000;

interface Case {
  label: string;
  handover: "ebpf" | "kernel" | "none";
  watch: boolean;
}

const CASES: Case[] = (["ebpf", "kernel", "none"] as const).flatMap((handover) =>
  [true, false].map((watch) => ({
    label: `${handover === "ebpf" ? "steered" : `--handover ${handover}`}, ${
      watch ? "watching (an edit)" : "--no-watch (`hotreload reload`)"
    }`,
    handover,
    watch,
  }))
);

interface Result {
  /** Requests per new worker in the window. */
  served: number[];
  /** What the log last said of spread connections, if anything. */
  spread?: string;
}

const APP = `Deno.serve(() => new Response("hello"));\n`;

/** Requests each ready worker of `generation` has served, by pid. */
async function counts(dir: string, generation: number): Promise<Map<number, number>> {
  const result = await runCli(["status", "--json"], dir);
  const report = JSON.parse(result.stdout) as StatusReport;
  return new Map(
    report.children
      .filter((row) =>
        row.role === "worker" && row.state === "ready" && row.generation === generation
      )
      .map((row) => [row.pid ?? 0, row.requests ?? 0]),
  );
}

/** One run of `c`, inside its network namespace. */
async function runCase(c: Case): Promise<Result> {
  const dir = await makeProject({ "main.ts": APP });
  const port = freePort();
  const run = new Hotreload(
    ["run", "main.ts", "-N", "-w", String(WORKERS), "--port", String(port)]
      .concat(["--handover", c.handover], c.watch ? [] : ["--no-watch"]),
    dir,
  );
  let load: Deno.ChildProcess | undefined;
  try {
    await run.waitForReady(WORKERS);
    load = new Deno.Command("wrk", {
      args: [`-t2`, `-c${CONNECTIONS}`, "-d60s", `http://127.0.0.1:${port}/`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await new Promise((resolve) => setTimeout(resolve, RELOAD_AT_MS));
    if (c.watch) await Deno.writeTextFile(`${dir}/main.ts`, `${APP}// edited\n`);
    else await runCli(["reload"], dir);
    await waitFor(async () => {
      const report = JSON.parse((await runCli(["status", "--json"], dir)).stdout) as StatusReport;
      return report.supervisor.generation === 2 && !report.supervisor.reloading &&
        report.children.every((row) => row.generation !== 1);
    }, "the reload to end");
    await new Promise((resolve) => setTimeout(resolve, FROM_MS));
    const before = await counts(dir, 2);
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
    const after = await counts(dir, 2);
    const served = [...after].map(([pid, n]) => n - (before.get(pid) ?? n));
    const spread = [...run.output.text().matchAll(/spread \((\d+(?:\/\d+)*)\)/g)].at(-1)?.[1];
    return { served, spread };
  } finally {
    try {
      load?.kill("SIGTERM");
      await load?.status;
    } catch { /* ended */ }
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the rounds; returns the markdown section. */
export async function benchSpread(): Promise<string> {
  const results = CASES.map(() => [] as Result[]);
  for (let round = 0; round < ROUNDS; round++) {
    // The order rotates, so a drift of the machine's speed favours no case.
    for (let k = 0; k < CASES.length; k++) {
      const i = (k + round) % CASES.length;
      results[i].push(
        await runInNetns<Result>(new URL(import.meta.url).pathname, [JSON.stringify(CASES[i])], {
          migrate: CASES[i].handover === "kernel" ? 1 : 0,
        }),
      );
    }
  }
  const ratio = (r: Result, pick: (values: number[]) => number) => {
    const mean = r.served.reduce((a, b) => a + b, 0) / r.served.length;
    return pick(r.served) / mean;
  };
  const even = (r: Result) =>
    r.served.length === WORKERS && ratio(r, (v) => Math.max(...v)) <= 1.25 &&
    ratio(r, (v) => Math.min(...v)) >= 0.75;
  const rows = CASES.map((c, i) => [
    c.label,
    results[i].map((r) => ratio(r, (v) => Math.max(...v)).toFixed(2)).join(", "),
    results[i].map((r) => ratio(r, (v) => Math.min(...v)).toFixed(2)).join(", "),
    `${results[i].filter(even).length} of ${results[i].length}`,
    results[i].map((r) => r.spread ?? "-").join(", "),
  ]);
  return [
    "## Load spread after a reload",
    "",
    machine(),
    "",
    `A hello app, ${WORKERS} workers, \`wrk -t2 -c${CONNECTIONS}\` (keep-alive, not pinned); ` +
    `a reload ${
      RELOAD_AT_MS / 1000
    } s in (an edit while watching, \`hotreload reload\` when not); ` +
    `the requests each new worker served from ${FROM_MS / 1000} s to ` +
    `${(FROM_MS + WINDOW_MS) / 1000} s after the reload ended, as \`status\` counts them; ` +
    `${ROUNDS} runs per row, each in its own network namespace (tcp_migrate_req=1 for kernel, ` +
    `0 otherwise), cases alternating. "Connections" is what the log last said were spread ` +
    "(rebalancing, without steering; steered, the program hands connections out in turn).",
    "",
    table(["mode", "max ÷ mean", "min ÷ mean", "within ±25 %", "connections"], rows),
  ].join("\n");
}

if (import.meta.main && Deno.args.length === 1) {
  console.log(JSON.stringify(await runCase(JSON.parse(Deno.args[0]) as Case)));
}
