/**
 * `deno task bench spread`: how evenly keep-alive load lies over 4 workers
 * before and after a reload, in every handover mode, watching and not.
 *
 * A hello app (and, in some rows, one whose handler reads its request), 4
 * workers; wrk -c16 (keep-alive). The requests each worker
 * serves, as `status` counts them, in a window of WINDOW_MS from FROM_MS
 * after wrk started (before the reload, the first generation), then in one
 * of the same length from FROM_MS after the reload (an edit while watching,
 * `hotreload reload` when not) ended. Reported per run: max ÷ mean and
 * min ÷ mean of both windows, whether every worker is within ±25 % of the
 * mean in each, and the connections per worker the log last said
 * were spread (src/supervisor/rebalance.ts). Each case runs in a network
 * namespace of its own (tcp_migrate_req=1 for `kernel`, 0 otherwise); the
 * cases alternate within each round. Needs root (namespaces, steering).
 *
 * Four loads. `pinned`: wrk -t2 on LOAD_CPU, hotreload and its workers on
 * SERVER_CPUS, as the throughput bench runs, and as clients on other
 * machines load a server. `shared`: wrk -t2 not pinned, its two threads
 * sharing both cores with the workers. `one thread`: wrk -t1 not pinned.
 * `a thread each`: wrk -t16 not pinned, each connection a client of its own.
 * A worker's rate depends on which client threads its connections belong
 * to, not only on how many it has. Measured (2026-12-07, steered, watching,
 * shared): with the counts 4/4/4/4 after the reload, one worker used half the
 * CPU time of the others for 6 s and more, in 3 runs of 3; with wrk -t1, 4
 * runs of 4 were within 1.06 of the mean. A reload moves every connection,
 * so which threads' connections each worker ends with is drawn anew.
 */
import { LOAD_CPU, machine, runInNetns, SERVER_CPUS, table } from "./lib.ts";
import { freePort, Hotreload, makeProject, runCli, waitFor } from "../tests/helpers.ts";
import type { StatusReport } from "../src/control/protocol.ts";

const ROUNDS = 3;
const WORKERS = 4;
const CONNECTIONS = 16;
const FROM_MS = 1000;
const WINDOW_MS = 4000;

type Load = "pinned" | "shared" | "one thread" | "a thread each";

/** wrk's threads per load. */
const THREADS: Record<Load, number> = {
  pinned: 2,
  shared: 2,
  "one thread": 1,
  "a thread each": CONNECTIONS,
};

interface Case {
  label: string;
  handover: "ebpf" | "kernel" | "none";
  watch: boolean;
  load: Load;
  /** The app's handler reads its request (else it declares no parameter: Deno's fast path). */
  reads?: boolean;
}

const mode = (handover: Case["handover"], watch: boolean) =>
  `${handover === "ebpf" ? "steered" : `--handover ${handover}`}, ${
    watch ? "watching (an edit)" : "--no-watch (`hotreload reload`)"
  }`;

const CASES: Case[] = [
  ...(["pinned", "shared"] as const).flatMap((load) =>
    (["ebpf", "kernel", "none"] as const).flatMap((handover) =>
      [true, false].map((watch) => ({ label: mode(handover, watch), handover, watch, load }))
    )
  ),
  // What the client's threads do to the spread, and what a handler that reads its request (held
  // workers relay its requests, and hand their clients out once the whole generation serves) does.
  ...([
    ["one thread", false],
    ["a thread each", false],
    ["pinned", true],
    ["shared", true],
  ] as const).flatMap(([load, reads]) =>
    (["ebpf", "none"] as const).map((handover) => ({
      label: mode(handover, true),
      handover,
      watch: true,
      load,
      reads,
    }))
  ),
];

interface Result {
  /** Requests per worker of the first generation in the window before the reload. */
  before: number[];
  /** Requests per new worker in the window after it. */
  served: number[];
  /** What the log last said of spread connections, if anything. */
  spread?: string;
}

const APP = `Deno.serve(() => new Response("hello"));\n`;
const READING_APP =
  `Deno.serve((request) => new Response(request.method === "GET" ? "hello" : ""));\n`;

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

/** Requests each worker of `generation` serves from FROM_MS on, for WINDOW_MS. */
async function windowCounts(dir: string, generation: number): Promise<number[]> {
  await new Promise((resolve) => setTimeout(resolve, FROM_MS));
  const start = await counts(dir, generation);
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS));
  const end = await counts(dir, generation);
  return [...end].map(([pid, n]) => n - (start.get(pid) ?? n));
}

/** One run of `c`, inside its network namespace. */
async function runCase(c: Case): Promise<Result> {
  const app = c.reads ? READING_APP : APP;
  const dir = await makeProject({ "main.ts": app });
  const port = freePort();
  const pinned = c.load === "pinned";
  const run = new Hotreload(
    ["run", "main.ts", "-N", "-w", String(WORKERS), "--port", String(port)]
      .concat(["--handover", c.handover], c.watch ? [] : ["--no-watch"]),
    dir,
    {},
    pinned ? ["taskset", "-c", SERVER_CPUS] : [],
  );
  let load: Deno.ChildProcess | undefined;
  try {
    await run.waitForReady(WORKERS);
    const wrk = ["wrk", `-t${THREADS[c.load]}`, `-c${CONNECTIONS}`, "-d60s"]
      .concat(`http://127.0.0.1:${port}/`);
    const argv = pinned ? ["taskset", "-c", LOAD_CPU, ...wrk] : wrk;
    load = new Deno.Command(argv[0], { args: argv.slice(1), stdout: "null", stderr: "null" })
      .spawn();
    const before = await windowCounts(dir, 1);
    if (c.watch) await Deno.writeTextFile(`${dir}/main.ts`, `${app}// edited\n`);
    else await runCli(["reload"], dir);
    await waitFor(
      async () => {
        const report = JSON.parse((await runCli(["status", "--json"], dir)).stdout) as StatusReport;
        return report.supervisor.generation === 2 && !report.supervisor.reloading &&
          report.children.every((row) => row.generation !== 1);
      },
      "the reload to end",
      60_000,
    );
    const served = await windowCounts(dir, 2);
    const spread = [...run.output.text().matchAll(/spread \((\d+(?:\/\d+)*)\)/g)].at(-1)?.[1];
    return { before, served, spread };
  } catch (error) {
    console.error(run.output.text().split("\n").slice(-40).join("\n"));
    throw error;
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
      try {
        results[i].push(
          await runInNetns<Result>(new URL(import.meta.url).pathname, [JSON.stringify(CASES[i])], {
            migrate: CASES[i].handover === "kernel" ? 1 : 0,
          }),
        );
      } catch (error) {
        // One run that failed is reported as failed: the others' figures still count.
        console.error(`spread: ${CASES[i].label}, ${CASES[i].load}: ${error}`);
        results[i].push({ before: [], served: [] });
      }
    }
  }
  const ratio = (values: number[], pick: (values: number[]) => number) =>
    pick(values) / (values.reduce((a, b) => a + b, 0) / values.length);
  const max = (values: number[]) => ratio(values, (v) => Math.max(...v)).toFixed(2);
  const min = (values: number[]) => ratio(values, (v) => Math.min(...v)).toFixed(2);
  const cell = (values: number[]) =>
    values.length === 0 ? "failed" : `${max(values)} / ${min(values)}`;
  const even = (values: number[]) =>
    values.length === WORKERS && Number(max(values)) <= 1.25 && Number(min(values)) >= 0.75;
  const rows = CASES.map((c, i) => [
    c.label,
    c.load,
    c.reads ? "reads it" : "none",
    results[i].map((r) => cell(r.before)).join(", "),
    results[i].map((r) => cell(r.served)).join(", "),
    `${results[i].filter((r) => even(r.before)).length} of ${results[i].length}`,
    `${results[i].filter((r) => even(r.served)).length} of ${results[i].length}`,
    results[i].map((r) => r.spread ?? "-").join(", "),
  ]);
  return [
    "## Load spread after a reload",
    "",
    machine(),
    "",
    `A hello app, ${WORKERS} workers, \`wrk -c${CONNECTIONS}\` (keep-alive); the requests each ` +
    `worker served in ${WINDOW_MS / 1000} s, as \`status\` counts them: before the reload from ` +
    `${FROM_MS / 1000} s after wrk started, after it from ${FROM_MS / 1000} s after the reload ` +
    "(an edit while watching, `hotreload reload` when not) ended. Each cell gives max ÷ mean / " +
    `min ÷ mean of one run; ${ROUNDS} runs per row, each in its own network namespace ` +
    "(tcp_migrate_req=1 for kernel, 0 otherwise), cases alternating. Loads: pinned, `wrk -t2` on " +
    `CPU ${LOAD_CPU} and hotreload with its workers on CPU ${SERVER_CPUS} (as the throughput ` +
    "bench, and as clients on other machines load a server); shared, `wrk -t2` not pinned; one " +
    "thread, `wrk -t1` not pinned; a thread each, `wrk -t16` not pinned. The app's handler reads " +
    "no request (`() => new Response(...)`, Deno's fast path: a held worker asks its clients to " +
    "reconnect at once), or reads it (a held worker relays its requests to the new workers, and " +
    'asks its clients to reconnect once the whole new generation serves). "Connections" is what ' +
    "the log last said were spread " +
    "(src/supervisor/rebalance.ts).",
    "",
    table([
      "mode",
      "load",
      "request",
      "before the reload",
      "after the reload",
      "before: within ±25 %",
      "after: within ±25 %",
      "connections",
    ], rows),
  ].join("\n");
}

if (import.meta.main && Deno.args.length === 1) {
  console.log(JSON.stringify(await runCase(JSON.parse(Deno.args[0]) as Case)));
}
