/**
 * Watcher benchmark: a tree of 20,000 small files in 2,000 folders; for each
 * backend the set-up time (first scan / watch set-up), idle CPU, and the
 * latency from a write to its batch, minus the debounce.
 *
 * Idle CPU is this process's user+system time (`getrusage`, microseconds)
 * over windows of 10 s, as % of one core. Poll variants are measured after 5
 * warm-up rounds (the JIT compiles the scan loop during the first rounds; a
 * watcher lives for hours) in three windows, and the median is reported with
 * the range, beside its ratio to the anchor measured in the same run.
 *
 * Variants: inotify events; polling at 1000 ms with statx through held
 * descriptors (what hotreload uses on a local disk); the same by name (what
 * it uses on a network mount, forced here by a fake mount table); and a plain
 * `Deno.statSync` of every file and folder each round (the anchor the cheaper
 * probes are measured against). A baseline row is the process idle without a
 * watcher.
 *
 * Run: `deno run -A bench/watch.ts` (prints a markdown table, ~3 min).
 *
 * @module
 */
import process from "node:process";
import { createWatcherWith, type WatcherDeps } from "../src/watch/create.ts";
import type { ChangeBatch, WatchOptions } from "../src/watch/mod.ts";
import { StatProber } from "../src/watch/probe.ts";
import { machine, median } from "./lib.ts";

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
  /** CPU of one core used while idle, in percent: median of the windows. */
  idleCpuPct: number;
  /** Every idle window, in percent. */
  idleWindowsPct: number[];
  /** Idle CPU relative to the anchor row of the same run (poll variants). */
  vsAnchor?: number;
  /** Idle CPU per poll round, in ms (poll variants). */
  cpuMsPerRound?: number;
  /** CPU per round during the warm-up rounds, in ms (poll variants). */
  warmupMsPerRound?: number;
  /** Latency from a write to the batch with the debounce subtracted. */
  latencyMedianMs?: number;
  latencyMaxMs?: number;
  samples?: number;
  /**
   * Poll variants: samples whose batch came at most two rounds after the
   * write (the first round that starts after it, plus the follow-up round
   * that confirms the burst is over); a change seen later was missed by a
   * round.
   */
  nextRound?: number;
}

/** What {@linkcode benchWatch} measured, and where. */
export interface WatchBenchResult {
  files: number;
  dirs: number;
  idleSeconds: number;
  rows: WatchBenchRow[];
  /** Machine, kernel, Deno version and date. */
  machine: string;
}

/** Options of {@linkcode benchWatch}. */
export interface WatchBenchOptions {
  /** Number of files (default 20,000). */
  files?: number;
  /** Number of leaf folders holding them (default 2,000). */
  dirs?: number;
  /** Length of one idle window (default 10 s). */
  idleSeconds?: number;
  /** Idle windows per poll variant (default 3). */
  windows?: number;
  /** Latency samples per variant (default 20; 8 for the by-name and anchor rows). */
  writes?: number;
}

const WARMUP_ROUNDS = 5;

/** User + system CPU of this process in ms (getrusage: microsecond resolution). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  /** Idle windows to measure (the median is reported). */
  windows: number;
}

async function measure(
  root: string,
  files: string[],
  v: Variant,
  idleSeconds: number,
  deadline: number,
): Promise<WatchBenchRow> {
  const interval = v.poll?.mode === "force" ? v.poll.intervalMs ?? 500 : 0;
  let waiter: { rel: string; resolve: (t: number) => void } | null = null;
  let roundsAtBatch = 0;
  const onBatch = (b: ChangeBatch) => {
    const t = performance.now();
    if (waiter && b.changes.some((c) => c.path === waiter!.rel)) {
      roundsAtBatch = w.pollStats?.().rounds ?? 0;
      const found = waiter;
      waiter = null;
      found.resolve(t);
    }
  };
  const t0 = performance.now();
  const w = await createWatcherWith(
    { root, debounceMs: v.debounceMs, poll: v.poll, onBatch },
    v.deps,
  );
  const setupMs = performance.now() - t0;
  try {
    // Poll variants: let the JIT settle on the scan loop; events: let set-up garbage settle.
    const warmCpu0 = cpuMs();
    await sleep(interval > 0 ? WARMUP_ROUNDS * interval + interval / 2 : 1000);
    const warmupMsPerRound = interval > 0 ? (cpuMs() - warmCpu0) / WARMUP_ROUNDS : undefined;
    const windows: number[] = [];
    for (let i = 0; i < v.windows; i++) windows.push(await idleCpu(idleSeconds));
    const latencies: number[] = [];
    let nextRound = 0;
    for (let i = 0; i < v.writes && performance.now() < deadline; i++) {
      // A random phase against the poll rounds, so the samples are not biased.
      await sleep(interval > 0 ? Math.random() * interval : 20 + Math.random() * 30);
      const abs = files[Math.floor(Math.random() * files.length)];
      const rel = abs.slice(root.length + 1);
      const seen = new Promise<number>((resolve) => (waiter = { rel, resolve }));
      const roundsAtWrite = w.pollStats?.().rounds ?? 0;
      const start = performance.now();
      Deno.writeTextFileSync(abs, `// ${i}\n`, { append: true });
      const timeout = sleep(5000 + interval * 2).then(() => NaN);
      const at = await Promise.race([seen, timeout]);
      waiter = null;
      latencies.push(at - start - v.debounceMs);
      if (!Number.isNaN(at) && roundsAtBatch - roundsAtWrite <= 2) nextRound++;
    }
    const ok = latencies.filter((x) => !Number.isNaN(x));
    const idleCpuPct = median(windows);
    return {
      variant: v.variant,
      backend: w.backend,
      held: w.pollStats?.().heldFiles,
      prober: w.prober,
      intervalMs: interval || undefined,
      debounceMs: v.debounceMs,
      setupMs,
      idleCpuPct,
      idleWindowsPct: windows,
      cpuMsPerRound: interval ? (idleCpuPct / 100) * interval : undefined,
      warmupMsPerRound,
      latencyMedianMs: ok.length ? median(ok) : NaN,
      latencyMaxMs: ok.length ? Math.max(...ok) : NaN,
      samples: ok.length,
      nextRound: interval ? nextRound : undefined,
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
  const windows = opts.windows ?? 3;
  const writes = opts.writes ?? 20;
  const started = performance.now();
  const root = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-bench-" }));
  try {
    const files = await buildTree(root, nFiles, nDirs);
    const rows: WatchBenchRow[] = [];
    await sleep(1000);
    const baseline = await idleCpu(Math.min(5, idleSeconds));
    rows.push({
      variant: "no watcher (baseline)",
      backend: "none",
      idleCpuPct: baseline,
      idleWindowsPct: [baseline],
    });
    const few = Math.max(1, Math.round(writes * 0.4));
    const poll1s: WatchOptions["poll"] = { mode: "force", intervalMs: 1000 };
    const variants: Variant[] = [
      {
        variant: "events (inotify)",
        poll: { mode: "never" },
        deps: {},
        debounceMs: 50,
        writes,
        windows: 1,
      },
      {
        variant: "poll, statx via FFI (hotreload)",
        poll: poll1s,
        deps: {},
        debounceMs: 50,
        writes,
        windows,
      },
      {
        variant: "poll, statx by name (as on a network mount)",
        poll: poll1s,
        deps: { systemInfo: () => ({ mounts: `none / nfs4 rw 0 0\n`, osRelease: "" }) },
        debounceMs: 50,
        writes: few,
        windows,
      },
      {
        variant: "poll, Deno.statSync every file (anchor)",
        poll: poll1s,
        deps: { prober: new StatProber() },
        debounceMs: 50,
        writes: few,
        windows,
      },
    ];
    // Latency sampling stops early if the whole run would pass ~5 min.
    const deadline = started + 300_000;
    for (const v of variants) rows.push(await measure(root, files, v, idleSeconds, deadline));
    const anchor = rows[rows.length - 1].idleCpuPct;
    for (const r of rows) if (r.backend === "poll") r.vsAnchor = r.idleCpuPct / anchor;
    return {
      files: files.length,
      dirs: nDirs + Math.max(1, Math.round(Math.sqrt(nDirs) / 2)),
      idleSeconds,
      rows,
      machine: machine(),
    };
  } finally {
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
}

/** Render a result as a markdown table. */
export function formatWatchBench(r: WatchBenchResult): string {
  const num = (x: number | undefined, digits: number, unit: string) =>
    x === undefined || Number.isNaN(x) ? "–" : `${x.toFixed(digits)}${unit}`;
  const idle = (x: WatchBenchRow) => {
    if (x.idleWindowsPct.length < 2) return num(x.idleCpuPct, 1, " %");
    const lo = Math.min(...x.idleWindowsPct);
    const hi = Math.max(...x.idleWindowsPct);
    return `${num(x.idleCpuPct, 1, " %")} (${lo.toFixed(1)}–${hi.toFixed(1)})`;
  };
  const lines = [
    `${r.files.toLocaleString("en")} files in ${r.dirs.toLocaleString("en")} folders; ` +
    `idle CPU of this process (getrusage) over ${r.idleSeconds} s windows, poll rows after ` +
    `${WARMUP_ROUNDS} warm-up rounds, median of their windows (range); ` +
    `${r.machine}.`,
    "",
    "| variant | interval | set-up | idle CPU, % of one core | × anchor | CPU per round | files via held fd | latency − debounce, median / max | seen by the next round |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const x of r.rows) {
    const cells = [
      x.variant,
      x.intervalMs ? `${x.intervalMs} ms` : "–",
      num(x.setupMs, 0, " ms"),
      idle(x),
      num(x.vsAnchor, 2, ""),
      x.cpuMsPerRound === undefined
        ? "–"
        : `${num(x.cpuMsPerRound, 0, " ms")} (warm-up ${num(x.warmupMsPerRound, 0, " ms")})`,
      x.held === undefined ? "–" : x.held.toLocaleString("en"),
      x.latencyMedianMs === undefined
        ? "–"
        : `${num(x.latencyMedianMs, 1, "")} / ${num(x.latencyMaxMs, 1, " ms")} (${x.samples})`,
      x.nextRound === undefined ? "–" : `${x.nextRound} of ${x.samples}`,
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
