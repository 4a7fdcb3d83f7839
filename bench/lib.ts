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
