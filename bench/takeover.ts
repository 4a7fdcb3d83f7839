/**
 * `deno task bench takeover`: tests/scenarios/takeover.ts (each run in a
 * network namespace of its own) for every handover, side by side: instance
 * A (2 workers) under 4 keep-alive and 4 new-connection clients; a
 * `run --takeover` of code that binds, then throws; B (`--takeover`, 3
 * workers, other code) takes A over; B killed with SIGKILL, a plain `run` C
 * succeeds it. Per phase, failed / answered requests of each kind of client,
 * and the time from the takeover command to the old supervisor's exit.
 * Needs root (`unshare -n`).
 */
import type { Load, TakeoverResult } from "../tests/scenarios/takeover.ts";
import { machine, median, runInNetns, table } from "./lib.ts";

const SCENARIO = new URL("../tests/scenarios/takeover.ts", import.meta.url).pathname;
const RUNS = 3;
const MODES = [
  { handover: "ebpf", migrate: 0, label: "ebpf (steered)" },
  { handover: "kernel", migrate: 1, label: "kernel (tcp_migrate_req=1)" },
  { handover: "none", migrate: 0, label: "none (tcp_migrate_req=0)" },
] as const;

const cell = (load: Load) => `${load.failed} / ${load.ok}`;

/** Runs the takeover scenario RUNS times per handover; returns its markdown section. */
export async function benchTakeover(): Promise<string> {
  const rows: (string | number)[][] = [];
  const times: string[] = [];
  for (const mode of MODES) {
    const ms: number[] = [];
    for (let run = 1; run <= RUNS; run++) {
      const result = await runInNetns<TakeoverResult>(
        SCENARIO,
        [JSON.stringify({ handover: mode.handover })],
        { migrate: mode.migrate, timeoutMs: 120_000 },
      );
      ms.push(result.takeoverMs);
      const failed = result.failedTakeover;
      rows.push([
        mode.label,
        run,
        `exit ${failed.code}; ${failed.failedRequests} failed, ${failed.brokenAnswers} answered by it`,
        cell(result.takeover.keepAlive),
        cell(result.takeover.fresh),
        result.takeoverMs,
        cell(result.succession.keepAlive),
        cell(result.succession.fresh),
      ]);
    }
    times.push(`${mode.label} ${median(ms)} ms`);
  }
  return [
    "## Takeover and succession",
    "",
    machine(),
    "",
    "tests/scenarios/takeover.ts, each run in its own network namespace: A (2 workers) under 4 " +
    "keep-alive (ka) and 4 new-connection (new) clients at once; a `run --takeover` of code that " +
    "binds, then throws (it must exit 1 and leave A serving); B (`--takeover`, 3 workers, other " +
    "code) takes A over; B is killed with SIGKILL and a plain `run` C (3 workers, newer code) " +
    "succeeds it (`--orphan-grace 10000`). Cells: failed / answered requests in that phase; " +
    "\"to A's exit\": from starting the takeover command to the old supervisor's exit " +
    "(`--settle` 1000 ms included).",
    "",
    table(
      [
        "handover",
        "run",
        "takeover that cannot start",
        "takeover ka",
        "takeover new",
        "to A's exit, ms",
        "succession ka",
        "succession new",
      ],
      rows,
    ),
    "",
    `Median time to A's exit: ${times.join("; ")}.`,
  ].join("\n");
}
