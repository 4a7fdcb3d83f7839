/** Shared pieces of the benchmarks: statistics, tables, processes, namespaces. */

import { CLI, freePort, waitFor } from "../tests/helpers.ts";
import { procStat } from "../src/child/os.ts";
export { runInNetns } from "../tests/netns.ts";
export { freePort };

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/** A markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Machine, kernel and Deno version, for the top of every result. */
export function machine(): string {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const memGiB = Math.round(Deno.systemMemoryInfo().total / 2 ** 30);
  const kernel = Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim();
  return `${Deno.build.os} ${kernel} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores ` +
    `(${cpu}), ${memGiB} GiB; Deno ${Deno.version.deno}; ${new Date().toISOString().slice(0, 10)}`;
}

/** `waitFor` polling every 5 ms (latencies are measured with it), 30 s by default. */
export function until<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000) {
  return waitFor(check, what, timeoutMs, 5);
}

/** Resident set size of a process in KiB, from /proc. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
}

/** CPU time (user + system) of a process in clock ticks (100 per second here). */
export function cpuTicks(pid: number): number {
  const fields = procStat(pid);
  if (fields === undefined) throw new Error(`process ${pid} is gone`);
  return Number(fields[11]) + Number(fields[12]);
}

/** `deno` arguments that run hotreload on `main.ts` with `workers` workers on `port`. */
export function hotreloadArgs(workers: number | string, port: number, extra: string[] = []) {
  return [
    "run",
    "-A",
    CLI,
    "run",
    "main.ts",
    "-N",
    "-w",
    String(workers),
    "--port",
    String(port),
    ...extra,
  ];
}

/** Starts `deno <args>` in `cwd` with no input and its output discarded. */
export function spawnQuiet(args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/**
 * wrk gets CPU 0 and every server process CPU 1 (children inherit it). Without
 * pinning, the load generator competes with the servers, and the kernel's
 * autogroup scheduling gives each session an equal share: hotreload's workers
 * run in sessions of their own (to signal their process groups), so wrk got
 * less CPU against them than against `deno serve --parallel`'s one process,
 * and measured them 9-13 % slower (seen here in a 9-round run).
 */
export const LOAD_CPU = "0";
export const SERVER_CPUS = "1";

/** What one wrk run measured. */
export interface Sample {
  rps: number;
  p99ms: number;
}

/** wrk (1 thread, pinned to LOAD_CPU) against 127.0.0.1:`port`; `headers` such as "Connection: close". */
export async function wrk(
  port: number,
  { connections, seconds, headers = [] }: {
    connections: number;
    seconds: number;
    headers?: string[];
  },
): Promise<Sample> {
  const result = await new Deno.Command("taskset", {
    args: [
      "-c",
      LOAD_CPU,
      "wrk",
      "-t1",
      `-c${connections}`,
      `-d${seconds}s`,
      "--latency",
      ...headers.flatMap((header) => ["-H", header]),
      `http://127.0.0.1:${port}/`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(result.stdout);
  const rps = Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
  const p99 = text.match(/99%\s+([\d.]+)(us|ms|s)/);
  const unit = { us: 0.001, ms: 1, s: 1000 }[p99?.[2] as "us" | "ms" | "s"] ?? NaN;
  const errors = text.match(/Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/);
  if (errors) console.error(`wrk reported: ${errors[0]}`);
  return { rps, p99ms: Number(p99?.[1]) * unit };
}
