/**
 * Watcher benchmark: a tree of 20,000 small files in 2,000 folders; for each
 * backend the set-up time (first scan / watch set-up), idle CPU over 10 s
 * (utime+stime of this process and its children, from /proc/self/stat), and
 * the latency from a write to its batch, minus the debounce.
 *
 * Variants: inotify events; polling at 1000 ms with statx through held
 * descriptors (what hotreload uses on a local disk); the same by name (what
 * it uses on a network mount, forced here by a fake mount table); and a plain
 * `Deno.statSync` of every file and folder each round (the anchor the cheaper
 * probes are measured against). A baseline row is the process idle without a
 * watcher.
 *
 * Run: `deno run -A bench/watch.ts` (prints a markdown table, ~90 s).
 *
 * @module
 */
import { createWatcherWith, type WatcherDeps } from "../src/watch/create.ts";
import type { ChangeBatch, WatchOptions } from "../src/watch/mod.ts";
import { StatProber } from "../src/watch/probe.ts";

/** One measured variant. */
export interface WatchBenchRow {
  variant: string;
  backend: "events" | "poll" | "none";
  /** Stat probe of a poll variant. */
  prober?: "statx" | "stat";
  /** Files stat'ed through a held descriptor (poll variants). */
  held?: number;
  intervalMs?: number;
  debounceMs?: number;
  /** Time for `createWatcher` to resolve (first scan / watch set-up). */
  setupMs?: number;
  /** CPU of one core used while idle, in percent. */
  idleCpuPct: number;
  /** Idle CPU per poll round, in ms (poll variants). */
  cpuMsPerRound?: number;
  /** Latency from a write to the batch with the debounce subtracted. */
  latencyMedianMs?: number;
  latencyMaxMs?: number;
  samples?: number;
}

/** What {@linkcode benchWatch} measured, and where. */
export interface WatchBenchResult {
  files: number;
  dirs: number;
  idleSeconds: number;
  rows: WatchBenchRow[];
  machine: string;
  deno: string;
  date: string;
}

/** Options of {@linkcode benchWatch}. */
export interface WatchBenchOptions {
  /** Number of files (default 20,000). */
  files?: number;
  /** Number of leaf folders holding them (default 2,000). */
  dirs?: number;
  /** Idle window per variant (default 10 s). */
  idleSeconds?: number;
  /** Latency samples per variant (default 20; 10 for the anchor). */
  writes?: number;
}

const CLK_TCK = 100;

function cpuMs(): number {
  const s = Deno.readTextFileSync("/proc/self/stat");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  // fields 14-17 of proc(5): utime stime cutime cstime (index 11.. after the comm field)
  return ((+f[11]) + (+f[12]) + (+f[13]) + (+f[14])) * (1000 / CLK_TCK);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function machine(): string {
  let cpu = "unknown CPU";
  try {
    cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? cpu;
  } catch { /* not Linux */ }
  let kernel: string = Deno.build.os;
  try {
    kernel = `Linux ${Deno.readTextFileSync("/proc/sys/kernel/osrelease").trim()}`;
  } catch { /* not Linux */ }
  return `${cpu}, ${navigator.hardwareConcurrency} cores, ${kernel}, ${Deno.build.arch}`;
}

async function buildTree(root: string, files: number, dirs: number): Promise<string[]> {
  const paths: string[] = [];
  const groups = Math.max(1, Math.round(Math.sqrt(dirs) / 2));
  const perDir = Math.ceil(files / dirs);
  const body = new TextEncoder().encode("export const x = 1;\n");
  let n = 0;
  for (let d = 0; d < dirs && n < files; d++) {
    const dir = `${root}/g${d % groups}/d${d}`;
    Deno.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < perDir && n < files; i++, n++) {
      const p = `${dir}/f${i}.ts`;
      Deno.writeFileSync(p, body);
      paths.push(p);
    }
    if (d % 200 === 0) await sleep(0);
  }
  return paths;
}

async function idleCpu(seconds: number): Promise<number> {
  const c0 = cpuMs();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  return ((cpuMs() - c0) / (performance.now() - t0)) * 100;
}

interface Variant {
  variant: string;
  poll: WatchOptions["poll"];
  deps: WatcherDeps;
  debounceMs: number;
  writes: number;
}

async function measure(
  root: string,
  files: string[],
  v: Variant,
  idleSeconds: number,
  deadline: number,
): Promise<WatchBenchRow> {
  let waiter: { rel: string; resolve: (t: number) => void } | null = null;
  const onBatch = (b: ChangeBatch) => {
    const t = performance.now();
    if (waiter && b.changes.some((c) => c.path === waiter!.rel)) {
      const w = waiter;
      waiter = null;
      w.resolve(t);
    }
  };
  const t0 = performance.now();
  const w = await createWatcherWith(
    { root, debounceMs: v.debounceMs, poll: v.poll, onBatch },
    v.deps,
  );
  const setupMs = performance.now() - t0;
  try {
    await sleep(500); // let set-up garbage settle before the idle window
    const idleCpuPct = await idleCpu(idleSeconds);
    const latencies: number[] = [];
    const interval = v.poll?.mode === "force" ? v.poll.intervalMs ?? 500 : 0;
    for (let i = 0; i < v.writes && performance.now() < deadline; i++) {
      // A random phase against the poll rounds, so the samples are not biased.
      await sleep(interval > 0 ? Math.random() * interval : 20 + Math.random() * 30);
      const abs = files[Math.floor(Math.random() * files.length)];
      const rel = abs.slice(root.length + 1);
      const seen = new Promise<number>((resolve) => (waiter = { rel, resolve }));
      const start = performance.now();
      Deno.writeTextFileSync(abs, `// ${i}\n`, { append: true });
      const timeout = sleep(5000 + interval * 2).then(() => NaN);
      const at = await Promise.race([seen, timeout]);
      waiter = null;
      latencies.push(at - start - v.debounceMs);
    }
    const ok = latencies.filter((x) => !Number.isNaN(x));
    return {
      variant: v.variant,
      backend: w.backend,
      held: w.pollStats?.().heldFiles,
      prober: w.prober,
      intervalMs: interval || undefined,
      debounceMs: v.debounceMs,
      setupMs,
      idleCpuPct,
      cpuMsPerRound: interval ? (idleCpuPct / 100) * interval : undefined,
      latencyMedianMs: ok.length ? median(ok) : NaN,
      latencyMaxMs: ok.length ? Math.max(...ok) : NaN,
      samples: ok.length,
    };
  } finally {
    await w.close();
  }
}

/** Build the tree in a temp dir, measure every variant, clean up. */
export async function benchWatch(opts: WatchBenchOptions = {}): Promise<WatchBenchResult> {
  const nFiles = opts.files ?? 20_000;
  const nDirs = opts.dirs ?? 2_000;
  const idleSeconds = opts.idleSeconds ?? 10;
  const writes = opts.writes ?? 20;
  const started = performance.now();
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-bench-" }));
  try {
    const files = await buildTree(root, nFiles, nDirs);
    const rows: WatchBenchRow[] = [];
    rows.push({
      variant: "no watcher (baseline)",
      backend: "none",
      idleCpuPct: await idleCpu(Math.min(5, idleSeconds)),
    });
    const variants: Variant[] = [
      { variant: "events (inotify)", poll: { mode: "never" }, deps: {}, debounceMs: 50, writes },
      {
        variant: "poll, statx via FFI (hotreload)",
        poll: { mode: "force", intervalMs: 1000 },
        deps: {},
        debounceMs: 50,
        writes,
      },
      {
        variant: "poll, statx by name (as on a network mount)",
        poll: { mode: "force", intervalMs: 1000 },
        deps: { systemInfo: () => ({ mounts: `none / nfs4 rw 0 0\n`, osRelease: "" }) },
        debounceMs: 50,
        writes: Math.max(1, Math.round(writes * 0.4)),
      },
      {
        variant: "poll, Deno.statSync every file (anchor)",
        poll: { mode: "force", intervalMs: 1000 },
        deps: { prober: new StatProber() },
        debounceMs: 50,
        writes: Math.max(1, Math.round(writes * 0.4)),
      },
    ];
    // Latency sampling stops early if the whole run would pass ~110 s.
    const deadline = started + 110_000;
    for (const v of variants) rows.push(await measure(root, files, v, idleSeconds, deadline));
    return {
      files: files.length,
      dirs: nDirs + Math.max(1, Math.round(Math.sqrt(nDirs) / 2)),
      idleSeconds,
      rows,
      machine: machine(),
      deno: Deno.version.deno,
      date: new Date().toISOString().slice(0, 10),
    };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** Render a result as a markdown table. */
export function formatWatchBench(r: WatchBenchResult): string {
  const num = (x: number | undefined, digits: number, unit: string) =>
    x === undefined || Number.isNaN(x) ? "–" : `${x.toFixed(digits)}${unit}`;
  const lines = [
    `${r.files.toLocaleString("en")} files in ${r.dirs.toLocaleString("en")} folders, ` +
    `idle CPU over ${r.idleSeconds} s (this process and its children, /proc/self/stat); ` +
    `${r.machine}; Deno ${r.deno}; ${r.date}.`,
    "",
    "| variant | interval | set-up | idle CPU, % of one core | CPU per round | files via held fd | latency − debounce, median / max | samples |",
    "| --- | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const x of r.rows) {
    const cells = [
      x.variant,
      x.intervalMs ? `${x.intervalMs} ms` : "–",
      num(x.setupMs, 0, " ms"),
      num(x.idleCpuPct, 1, " %"),
      num(x.cpuMsPerRound, 0, " ms"),
      x.held === undefined ? "–" : x.held.toLocaleString("en"),
      x.latencyMedianMs === undefined
        ? "–"
        : `${num(x.latencyMedianMs, 1, "")} / ${num(x.latencyMaxMs, 1, " ms")}`,
      x.samples === undefined ? "–" : String(x.samples),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const t0 = performance.now();
  const result = await benchWatch();
  console.log(formatWatchBench(result));
  console.log(`\n(bench took ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
}
