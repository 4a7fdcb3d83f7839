/**
 * `deno run -A bench/process_model.ts [starts] [pairs] [--profile]`: n plain
 * `deno run` processes sharing a port (bench/processes.ts; n = WORKERS, 4)
 * against `deno serve --parallel` with as many threads, new connections, both
 * pinned to the servers' core as in bench/throughput_paired.ts, in
 * alternating 2 s windows (ABBA), each start fresh. With PROCESS_TUNABLES,
 * the processes run with it as GLIBC_TUNABLES; with BASE_TUNABLES (a value,
 * or "none"), they are measured against processes with it instead of threads.
 * With HOTRELOAD_MODE (a mode of bench/throughput.ts, e.g. "--no-watch
 * --handover none"), hotreload's workers in that mode as they start are
 * measured against the same with GLIBC_TUNABLES empty (without the tunables).
 *
 * A diagnostic, not a judged bench. The paired bench showed 4 processes
 * serving about 0.7 of the threads in some starts, for the whole start; this
 * prints, per window, what the servers' core did for each request, so that a
 * slow start can be told from a fast one: CPU µs per request (user /
 * system), context switches per request (every thread of every server
 * process), minor page faults per request, the servers' core's user / system
 * / softirq / idle µs per request, NET_RX softirqs per request on each core
 * and wrk's CPU. With `--profile`, one more window per side per start is
 * sampled with bpftrace (kernel stacks on the servers' core, 997 Hz). It
 * found glibc's heap trimming (docs/benchmarks.md).
 */
import { median, wrk } from "./lib.ts";
import { type RunningSubject, startSubject, type Subject, subjects } from "./throughput.ts";

const WORKERS = Number(Deno.env.get("WORKERS") ?? 4);
const positional = Deno.args.filter((arg) => !arg.startsWith("--"));
const STARTS = Number(positional[0] ?? 6);
const PAIRS = Number(positional[1] ?? 4);
const PROFILE = Deno.args.includes("--profile");
const WINDOW_SECONDS = 2;
const SERVER_CPU = 1;
const TICKS = 100;

function readInts(path: string, pick: (text: string) => number[]): number[] {
  try {
    return pick(Deno.readTextFileSync(path));
  } catch {
    return [];
  }
}

/** Voluntary + involuntary switches, minor faults, user and system ticks of a process's threads. */
function processCounters(pid: number): number[] {
  let switches = 0;
  let entries: Deno.DirEntry[] = [];
  try {
    entries = [...Deno.readDirSync(`/proc/${pid}/task`)];
  } catch {
    return [0, 0, 0, 0];
  }
  for (const task of entries) {
    const [v, n] = readInts(
      `/proc/${pid}/task/${task.name}/status`,
      (text) =>
        ["voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"].map((key) =>
          Number(new RegExp(`^${key}:\\s+(\\d+)`, "m").exec(text)?.[1] ?? 0)
        ),
    );
    switches += (v ?? 0) + (n ?? 0);
  }
  const stat = readInts(`/proc/${pid}/stat`, (text) => {
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    // Fields from 3 on: minflt is field 10, utime 14, stime 15.
    return [Number(fields[7]), Number(fields[11]), Number(fields[12])];
  });
  return [switches, ...(stat.length === 3 ? stat : [0, 0, 0])];
}

function cpuLine(): number[] {
  const line = Deno.readTextFileSync("/proc/stat").split("\n").find((l) =>
    l.startsWith(`cpu${SERVER_CPU} `)
  )!;
  // user nice system idle iowait irq softirq steal
  return line.trim().split(/\s+/).slice(1, 9).map(Number);
}

function netRx(): number[] {
  const line = Deno.readTextFileSync("/proc/softirqs").split("\n").find((l) =>
    l.trim().startsWith("NET_RX:")
  )!;
  return line.trim().split(/\s+/).slice(1).map(Number);
}

interface Counters {
  at: number;
  perProcess: Map<number, number[]>;
  cpu: number[];
  netRx: number[];
}

function counters(pids: number[]): Counters {
  return {
    at: performance.now(),
    perProcess: new Map(pids.map((pid) => [pid, processCounters(pid)])),
    cpu: cpuLine(),
    netRx: netRx(),
  };
}

interface Window {
  rps: number;
  userUs: number;
  sysUs: number;
  switches: number;
  faults: number;
  coreUser: number;
  coreSys: number;
  coreSoftirq: number;
  coreIdle: number;
  steal: number;
  netRx: number[];
  wrkCpu: number;
}

async function window(side: RunningSubject): Promise<Window> {
  const pids = side.server.pids();
  const first = counters(pids);
  const result = await wrk(side.port, {
    connections: 64,
    seconds: WINDOW_SECONDS,
    headers: ["Connection: close"],
  });
  const last = counters(pids);
  const seconds = (last.at - first.at) / 1000;
  const n = result.requests;
  const sum = (index: number) => {
    let total = 0;
    for (const [pid, values] of last.perProcess) {
      total += values[index] - (first.perProcess.get(pid)?.[index] ?? values[index]);
    }
    return total;
  };
  const core = (index: number) => ((last.cpu[index] - first.cpu[index]) / TICKS) * 1e6 / n;
  return {
    rps: result.rps,
    switches: sum(0) / n,
    faults: sum(1) / n,
    userUs: (sum(2) / TICKS) * 1e6 / n,
    sysUs: (sum(3) / TICKS) * 1e6 / n,
    coreUser: core(0) + core(1),
    coreSys: core(2),
    coreIdle: core(3),
    coreSoftirq: core(6),
    steal: core(7),
    netRx: last.netRx.map((value, cpu) => (value - first.netRx[cpu]) / n),
    wrkCpu: result.cpuSeconds / seconds,
  };
}

function describe(w: Window): string {
  return `${(w.rps / 1000).toFixed(1)}k  cpu ${w.userUs.toFixed(0)}u+${
    w.sysUs.toFixed(0)
  }s µs  core u/s/si/idle ${w.coreUser.toFixed(0)}/${w.coreSys.toFixed(0)}/${
    w.coreSoftirq.toFixed(0)
  }/${w.coreIdle.toFixed(0)}  sw ${w.switches.toFixed(2)}  flt ${w.faults.toFixed(2)}  rx ${
    w.netRx.map((x) => x.toFixed(1)).join("/")
  }  wrk ${Math.round(w.wrkCpu * 100)}%${w.steal > 0.5 ? `  steal ${w.steal.toFixed(1)}` : ""}`;
}

async function profileWindow(side: RunningSubject, label: string): Promise<void> {
  const script = `profile:hz:997 /cpu == ${SERVER_CPU}/ { @[comm, kstack(3)] = count(); }`;
  const tracer = new Deno.Command("taskset", {
    args: ["-c", "0", "bpftrace", "-e", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // Give it time to attach (it prints "Attaching" to stdout first).
  const reader = tracer.stdout.getReader();
  let text = "";
  const decoder = new TextDecoder();
  const deadline = Date.now() + 20_000;
  while (!text.includes("Attaching") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value);
  }
  const measured = await window(side);
  tracer.kill("SIGINT");
  const rest: Uint8Array[] = [];
  while (true) {
    const { value, done } = await reader.read();
    if (done) break;
    rest.push(value);
  }
  await tracer.status;
  for (const chunk of rest) text += decoder.decode(chunk);
  // Entries: "@[comm, \n stack...\n]: count".
  const entries: { key: string; count: number }[] = [];
  for (const match of text.matchAll(/@\[([^,]*),\s*([\s\S]*?)\]: (\d+)/g)) {
    const frames = match[2].trim().split("\n").map((f) => f.trim().replace(/\+\d+$/, ""))
      .filter(Boolean);
    entries.push({
      key: `${match[1]}: ${frames.length ? frames.join(" < ") : "(user)"}`,
      count: Number(match[3]),
    });
  }
  const byComm = new Map<string, number>();
  let total = 0;
  for (const e of entries) {
    total += e.count;
    const comm = e.key.split(":")[0];
    const user = e.key.endsWith("(user)");
    const k = `${comm}${user ? " user" : " kernel"}`;
    byComm.set(k, (byComm.get(k) ?? 0) + e.count);
  }
  console.log(`  profile ${label}: ${describe(measured)}; ${total} samples`);
  for (const [k, c] of [...byComm].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
    console.log(`    ${(c / total * 100).toFixed(1)}%  ${k}`);
  }
  for (const e of entries.sort((a, b) => b.count - a.count).slice(0, 14)) {
    console.log(`    ${(e.count / total * 100).toFixed(1)}%  ${e.key}`);
  }
}

const all = subjects();
/** n plain processes, with `tunables` as GLIBC_TUNABLES when given. */
function processesSubject(tunables?: string): Subject {
  return {
    key: `deno run ×${WORKERS}${tunables ? `, ${tunables}` : ""}`,
    server: "processes",
    workers: WORKERS,
    env: tunables ? { GLIBC_TUNABLES: tunables } : undefined,
    args: (port: number) => [
      "run",
      "-A",
      new URL("./processes.ts", import.meta.url).pathname,
      String(WORKERS),
      String(port),
    ],
  };
}
// PROCESS_TUNABLES: the processes' GLIBC_TUNABLES; BASE_TUNABLES: measure them
// against processes with these (or "none": none) instead of against threads.
const tunables = Deno.env.get("PROCESS_TUNABLES");
const base = Deno.env.get("BASE_TUNABLES");
// HOTRELOAD_MODE (e.g. "--no-watch --handover none"): hotreload's WORKERS workers in that
// mode, as they start, against the same with GLIBC_TUNABLES set empty (no tunables).
const mode = Deno.env.get("HOTRELOAD_MODE");
const hotreload = all.find((s) => s.key === `hotreload ${WORKERS}, ${mode}`);
if (mode !== undefined && hotreload === undefined) throw new Error(`no hotreload mode "${mode}"`);
const anchor = hotreload
  ? { ...hotreload, key: `${hotreload.key}, no tunables`, env: { GLIBC_TUNABLES: "" } }
  : base === undefined
  ? all.find((s) => s.key === `deno serve --parallel, DENO_JOBS=${WORKERS}`)!
  : processesSubject(base === "none" ? undefined : base);
const processes = hotreload ?? processesSubject(tunables);
const ratios: number[][] = [];
for (let start = 0; start < STARTS; start++) {
  const order = start % 2 === 0 ? [anchor, processes] : [processes, anchor];
  const started: RunningSubject[] = [];
  try {
    for (const subject of order) started.push(await startSubject(subject));
    const [anchorSide, procs] = order[0] === anchor ? started : [started[1], started[0]];
    for (const side of [anchorSide, procs]) {
      await wrk(side.port, { connections: 64, seconds: 2, headers: ["Connection: close"] });
    }
    const startRatios: number[] = [];
    console.log(`start ${start + 1}: processes ${procs.server.pids().join(",")}`);
    for (let pair = 0; pair < PAIRS; pair++) {
      const sides = pair % 2 === 0 ? [anchorSide, procs] : [procs, anchorSide];
      const got = new Map<RunningSubject, Window>();
      for (const side of sides) got.set(side, await window(side));
      const ratio = got.get(procs)!.rps / got.get(anchorSide)!.rps;
      startRatios.push(ratio);
      console.log(`  pair ${pair + 1}: ${ratio.toFixed(2)}`);
      console.log(`    anchor    ${describe(got.get(anchorSide)!)}`);
      console.log(`    processes ${describe(got.get(procs)!)}`);
    }
    ratios.push(startRatios);
    console.log(`  start median ${median(startRatios).toFixed(2)}`);
    if (PROFILE) {
      await profileWindow(anchorSide, "anchor");
      await profileWindow(procs, "processes");
    }
  } finally {
    for (const side of started) await side.stop();
  }
}
console.log(`starts' medians: ${ratios.map((r) => median(r).toFixed(2)).join(" ")}`);
