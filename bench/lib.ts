/** Shared pieces of the benchmarks: statistics, tables, processes, namespaces. */

import { CLI, freePort, Hotreload, killTagged, taggedPids, waitFor } from "../tests/helpers.ts";
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

/** The errors wrk counts: its socket errors, and answers that were not 2xx or 3xx. */
export interface WrkErrors {
  connect: number;
  read: number;
  write: number;
  timeout: number;
  non2xx: number;
}

/** All of one wrk run: requests/s, p99, requests, errors, and the CPU wrk itself used. */
export interface WrkResult extends Sample {
  requests: number;
  errors: WrkErrors;
  /** wrk's own user + system CPU time, in seconds (from its shell's `times`). */
  cpuSeconds: number;
}

/** "0m4.771s" (bash's `times`) in seconds. */
function shellSeconds(text: string): number {
  const parts = text.match(/(\d+)m([\d.]+)s/);
  return parts ? Number(parts[1]) * 60 + Number(parts[2]) : NaN;
}

/** wrk's duration text ("850.00us", "1.20ms", "2.00s") in milliseconds. */
function wrkMs(value: string | undefined, unit: string | undefined): number {
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit as "us" | "ms" | "s" | "m"];
  return value === undefined || scale === undefined ? NaN : Number(value) * scale;
}

/** Reads wrk's report (with `--latency`), followed by its shell's `times`. */
export function parseWrk(text: string): WrkResult {
  const count = (pattern: RegExp) => Number(text.match(pattern)?.[1] ?? 0);
  const p99 = text.match(/^\s*99%\s+([\d.]+)(us|ms|s|m)\s*$/m);
  // `times` prints the shell's own times, then its children's (wrk's): the last line.
  const times = text.trim().split("\n").at(-1)!.trim().split(/\s+/);
  return {
    rps: Number(text.match(/Requests\/sec:\s+([\d.]+)/)?.[1]),
    p99ms: wrkMs(p99?.[1], p99?.[2]),
    requests: Number(text.match(/(\d+) requests in /)?.[1]),
    errors: {
      connect: count(/Socket errors: connect (\d+)/),
      read: count(/Socket errors: .*read (\d+)/),
      write: count(/Socket errors: .*write (\d+)/),
      timeout: count(/Socket errors: .*timeout (\d+)/),
      non2xx: count(/Non-2xx or 3xx responses: (\d+)/),
    },
    cpuSeconds: shellSeconds(times[0] ?? "") + shellSeconds(times[1] ?? ""),
  };
}

/**
 * wrk against 127.0.0.1:`port`: `threads` threads (1), pinned to LOAD_CPU
 * unless `pinned` is false; `headers` such as "Connection: close". It runs
 * under a shell that prints its CPU time when it ends, so a result says how
 * busy the load generator itself was.
 */
export async function wrk(
  port: number,
  { connections, seconds, headers = [], threads = 1, pinned = true }: {
    connections: number;
    seconds: number;
    headers?: string[];
    threads?: number;
    pinned?: boolean;
  },
): Promise<WrkResult> {
  const command = [
    "bash",
    "-c",
    'wrk "$@"; status=$?; times; exit $status',
    "wrk",
    `-t${threads}`,
    `-c${connections}`,
    `-d${seconds}s`,
    "--latency",
    ...headers.flatMap((header) => ["-H", header]),
    `http://127.0.0.1:${port}/`,
  ];
  const argv = pinned ? ["taskset", "-c", LOAD_CPU, ...command] : command;
  const output = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  const result = parseWrk(text);
  if (!output.success || !Number.isFinite(result.rps)) {
    throw new Error(
      `wrk failed (exit ${output.code}):\n${text}${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return result;
}

/** Sum of wrk's error counts, socket errors and non-2xx. */
export function errorCount(errors: WrkErrors): number {
  return errors.connect + errors.read + errors.write + errors.timeout + errors.non2xx;
}

// ---- CPU accounting over a measurement --------------------------------------

/** Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** Busy ticks of all CPUs together since boot (/proc/stat: everything but idle and iowait). */
function busyTicks(): number {
  const fields = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  // user nice system idle iowait irq softirq steal (guest time is inside user already)
  return fields.slice(0, 8).reduce((sum, value, i) => i === 3 || i === 4 ? sum : sum + value, 0);
}

/** CPU ticks (user + system) of each process that still runs. */
function ticksOf(pids: number[]): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const pid of pids) {
    const fields = procStat(pid);
    if (fields !== undefined) ticks.set(pid, Number(fields[11]) + Number(fields[12]));
  }
  return ticks;
}

/**
 * Kernel threads (kthreadd's children: ksoftirqd, kworkers...): they carry
 * part of the network stack's work for the load itself, so they are not
 * counted as other work.
 */
function kernelThreads(): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const fields = procStat(Number(entry.name));
    if (fields !== undefined && fields[1] === "2") pids.push(Number(entry.name));
  }
  return pids;
}

/** How the CPU was used over a window, in cores (1 = one core busy the whole window). */
export interface CpuUse {
  /** The servers' processes. */
  server: number;
  /** The load generator (wrk), as it reported. */
  load: number;
  /** Everything else on the machine (other work), less this benchmark itself and kernel threads. */
  foreign: number;
  seconds: number;
}

/**
 * Starts accounting the machine's CPU: `servers()` lists the server
 * processes (read at the start and at the end; a process that starts
 * between counts from the end only). `end(loadSeconds)` says how the CPU
 * was used since, given the load generator's own CPU time.
 */
export function cpuWindow(servers: () => number[]): { end(loadSeconds: number): CpuUse } {
  const startedAt = performance.now();
  const busy = busyTicks();
  const first = ticksOf([Deno.pid, ...servers()]);
  const kernelFirst = ticksOf(kernelThreads());
  return {
    end(loadSeconds: number): CpuUse {
      const seconds = (performance.now() - startedAt) / 1000;
      const spent = busyTicks() - busy;
      const last = ticksOf([Deno.pid, ...servers()]);
      const delta = (pid: number) => Math.max(0, (last.get(pid) ?? 0) - (first.get(pid) ?? 0));
      let server = 0;
      for (const pid of last.keys()) if (pid !== Deno.pid) server += delta(pid);
      const own = delta(Deno.pid);
      let kernel = 0;
      for (const [pid, ticks] of ticksOf(kernelThreads())) {
        kernel += Math.max(0, ticks - (kernelFirst.get(pid) ?? 0));
      }
      const cores = (ticks: number) => ticks / TICKS / seconds;
      return {
        server: cores(server),
        load: loadSeconds / seconds,
        foreign: Math.max(0, cores(spent - server - own - kernel) - loadSeconds / seconds),
        seconds,
      };
    },
  };
}

/**
 * Waits until the machine is quiet: all CPUs together busy under `maxCores`
 * (this process not counted) over a `sampleMs` window, for at most
 * `timeoutMs`. Returns false if it never was (the caller measures anyway and
 * says so).
 */
export async function untilQuiet(
  { maxCores = 0.05, sampleMs = 500, timeoutMs = 120_000 } = {},
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const window = cpuWindow(() => []);
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    if (window.end(0).foreign < maxCores) return true;
    if (Date.now() >= deadline) return false;
  }
}

/** `pid` and every process below it (children, theirs...), from /proc. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const fields = procStat(Number(entry.name));
    if (fields === undefined) continue;
    const parent = Number(fields[1]);
    children.set(parent, [...children.get(parent) ?? [], Number(entry.name)]);
  }
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...children.get(tree[i]) ?? []);
  return tree;
}

/**
 * Waits until the server whose process is `pid` is idle: as many processes
 * in its tree as `processes` (when given) and, over `sampleMs`, no more than
 * one clock tick of CPU among them, for at most `timeoutMs`. Returns the
 * number of processes, or undefined if it never was idle.
 */
export async function untilIdle(
  pid: number,
  { processes = undefined as number | undefined, sampleMs = 250, timeoutMs = 10_000 } = {},
): Promise<number | undefined> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const before = ticksOf(processTree(pid));
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    const after = ticksOf(processTree(pid));
    const same = after.size === before.size && [...after.keys()].every((p) => before.has(p));
    const ticks = [...after].reduce((sum, [p, t]) => sum + t - (before.get(p) ?? 0), 0);
    if (same && ticks <= 1 && (processes === undefined || after.size === processes)) {
      return after.size;
    }
  }
  return undefined;
}

/** The CPUs a process may run on (`Cpus_allowed_list` of /proc/<pid>/status), or undefined when gone. */
export function allowedCpus(pid: number): string | undefined {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/status`).match(/Cpus_allowed_list:\s*(\S+)/)?.[1];
  } catch {
    return undefined;
  }
}

// ---- A server under measurement ---------------------------------------------

/**
 * A server a benchmark starts: `deno <args>` in `cwd`, pinned to `cpus` if
 * given (its children inherit it), with its output kept (stdout and stderr
 * together) and a tag in its environment that every process it starts
 * inherits, so `pids()` finds them all and `stop()` can prove none is left.
 */
/** Servers started and not yet stopped: a bench interrupted by a signal stops them first. */
const liveServers = new Set<BenchServer>();
let stopOnSignal = false;

function stopAllOnSignal(): void {
  if (stopOnSignal) return;
  stopOnSignal = true;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      await Promise.allSettled([...liveServers].map((server) => server.stop(2000)));
      Deno.exit(130);
    });
  }
}

export class BenchServer {
  /** The process and its output: spawned as the tests spawn hotreload (tests/helpers.ts). */
  readonly #run: Hotreload;
  readonly tag: string;
  readonly process: Deno.ChildProcess;
  readonly #done: Promise<Deno.CommandStatus>;

  constructor(
    args: string[],
    { cwd, env = {}, cpus }: { cwd: string; env?: Record<string, string>; cpus?: string },
  ) {
    const pin = cpus === undefined ? [] : ["taskset", "-c", cpus];
    this.#run = new Hotreload(args, cwd, env, pin, [Deno.execPath()]);
    this.tag = this.#run.tag;
    this.process = this.#run.process;
    this.#done = this.#run.status;
    stopAllOnSignal();
    liveServers.add(this);
  }

  /** What it printed so far. */
  text(): string {
    return this.#run.output.text();
  }

  /** Every live process it started (itself included). */
  pids(): number[] {
    return taggedPids(this.tag);
  }

  /** Throws unless every process of it may run on exactly `cpus`. */
  checkPinned(cpus: string): void {
    for (const pid of this.pids()) {
      const allowed = allowedCpus(pid);
      if (allowed !== undefined && allowed !== cpus) {
        throw new Error(`process ${pid} may run on CPUs ${allowed}, not ${cpus}`);
      }
    }
  }

  /** Waits until `url` answers 2xx. */
  async answers(url: string, timeoutMs = 30_000): Promise<void> {
    await until(
      async () => {
        const response = await fetch(url);
        await response.body?.cancel();
        return response.ok;
      },
      `${url} to answer\n${this.text()}`,
      timeoutMs,
    );
  }

  /**
   * SIGTERM, then SIGKILL after `graceMs`; then every process it started
   * must be gone within 10 s (the rest is killed by pid, and that is an error).
   */
  async stop(graceMs = 10_000): Promise<void> {
    liveServers.delete(this);
    try {
      this.process.kill("SIGTERM");
    } catch { /* already exited */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#done.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), graceMs)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        this.process.kill("SIGKILL");
      } catch { /* gone */ }
      await this.#done;
    }
    let left: number[] = [];
    try {
      await waitFor(() => (left = this.pids()).length === 0, "its processes to exit", 10_000);
    } catch {
      killTagged(this.tag);
      throw new Error(`processes ${left.join(", ")} were left running and were killed`);
    }
  }
}
