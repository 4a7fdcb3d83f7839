/**
 * `createWatcher`: validate options, resolve `--watch` paths, choose the
 * backend (events, or polling with the reason why), start it.
 *
 * @module
 */
import { dirname, isAbsolute, resolve } from "node:path";
import { chooseBackend, findMount, isNoInotifyFs, parseMounts, readSystemInfo } from "./backend.ts";
import { canonicalSync } from "./canonical.ts";
import { type Context, type Root, toRel } from "./context.ts";
import { EventsBackend, type WatchFsFn } from "./events.ts";
import { PathFilter } from "./filter.ts";
import { PollBackend, type PollStats } from "./poll.ts";
import type { Prober } from "./probe.ts";
import type { Watcher, WatchOptions } from "./types.ts";
import {
  DEFAULT_EVENTS_DEBOUNCE_MS,
  DEFAULT_EXTENSIONS,
  DEFAULT_POLL_DEBOUNCE_MS,
} from "./defaults.ts";

export { DEFAULT_EXTENSIONS };

const DEFAULT_POLL_MS = 500;

/** Seams for tests and the benchmark; production code passes none. */
export interface WatcherDeps {
  watchFs?: WatchFsFn;
  systemInfo?: () => { mounts: string; osRelease: string };
  prober?: Prober;
  /** setTimeout for the events backend's debounce (tests read the quiet it waits for). */
  schedule?: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>;
}

/** A watcher plus internals the tests and the benchmark look at. */
export interface InternalWatcher extends Watcher {
  /** The stat probe of the poll backend ("statx" or "stat"); undefined for events. */
  readonly prober?: "statx" | "stat";
  /** Table size of the poll backend, and how much of it is stat'ed through held descriptors. */
  readonly pollStats?: () => PollStats;
}

function realDir(root: string): string {
  const abs = resolve(root);
  let real: string;
  try {
    real = Deno.realPathSync(abs);
  } catch {
    throw new Error(`watch root ${abs} does not exist; run from the project directory or fix it`);
  }
  if (!Deno.statSync(real).isDirectory) {
    throw new Error(`watch root ${abs} is not a directory; pass the project directory`);
  }
  return real;
}

function resolveRoots(rootAbs: string, paths: readonly string[]): Root[] {
  const found: Root[] = [];
  for (const p of paths) {
    if (typeof p !== "string" || p === "") {
      throw new Error(`--watch needs a path, got ${JSON.stringify(p)}`);
    }
    const abs = isAbsolute(p) ? p : resolve(rootAbs, p);
    let real: string;
    let isDir: boolean;
    try {
      real = Deno.realPathSync(abs);
      isDir = Deno.statSync(real).isDirectory;
    } catch {
      throw new Error(
        `--watch path ${p} does not exist (${abs}); create it or remove that --watch`,
      );
    }
    if (isDir) {
      const rel = toRel(rootAbs, real);
      found.push({ abs: real, rel, dirAbs: real, dirRel: rel });
    } else {
      const dir = dirname(real);
      found.push({
        abs: real,
        rel: toRel(rootAbs, real),
        dirAbs: dir,
        dirRel: toRel(rootAbs, dir),
        only: real.slice(dir.length + (dir === "/" ? 0 : 1)),
      });
    }
  }
  // Drop paths that lie inside a watched directory (or repeat one).
  const dirs = found.filter((r) => r.only === undefined).map((r) => r.abs);
  const inside = (abs: string, d: string) => abs === d || abs.startsWith(d === "/" ? "/" : `${d}/`);
  const roots: Root[] = [];
  for (const r of found) {
    const covered = r.only === undefined
      ? dirs.some((d) => d !== r.abs && inside(r.abs, d))
      : dirs.some((d) => inside(r.abs, d));
    if (covered || roots.some((x) => x.abs === r.abs)) continue;
    roots.push(r);
  }
  return roots;
}

/** A directory the user named: by `--watch` or another flag (`--worker-dir`). */
interface NamedDir {
  abs: string;
  rel: string;
  flag: string;
  exists: boolean;
}

/**
 * The directories the user named: each `--watch` path that is a directory,
 * and `named` (`--worker-dir`), real paths where they exist (the watcher
 * reports real paths), relative to the root.
 */
function namedDirectories(
  rootAbs: string,
  paths: readonly string[],
  named: ReadonlyArray<{ path: string; flag: string }>,
): NamedDir[] {
  const found: NamedDir[] = [];
  for (const { path, flag } of [...paths.map((path) => ({ path, flag: "--watch" })), ...named]) {
    const abs = isAbsolute(path) ? resolve(path) : resolve(rootAbs, path);
    let real = abs;
    let exists = false;
    try {
      real = Deno.realPathSync(abs);
      exists = Deno.statSync(real).isDirectory;
      if (!exists) continue; // a file: `explicitFiles` has it
    } catch { /* not there yet: named all the same */ }
    const rel = toRel(rootAbs, real);
    if (!found.some((dir) => dir.rel === rel)) found.push({ abs: real, rel, flag, exists });
  }
  return found;
}

/**
 * Why a change of `path` would never be reported (see Watcher.unseen): it
 * is looked up by its real path, as the backends find files (neither
 * inotify nor the walk follows a link to a directory).
 */
function whyUnseen(
  rootAbs: string,
  roots: readonly Root[],
  filter: PathFilter,
  path: string,
): string | undefined {
  const real = canonicalSync(path);
  for (const root of roots) {
    if (root.only !== undefined) {
      if (real === root.abs) return undefined;
      continue;
    }
    if (real !== root.abs && !real.startsWith(root.abs === "/" ? "/" : `${root.abs}/`)) continue;
    const rel = toRel(rootAbs, real);
    if (filter.acceptsFile(rel)) return undefined;
    const name = rel.slice(rel.lastIndexOf("/") + 1);
    return filter.hasWatchedExtension(name) ? "ignored" : "not a watched extension (--ext)";
  }
  return "outside the watched paths";
}

/** What start-up says when a named directory and an ignore rule disagree. */
function namedNotes(filter: PathFilter, named: readonly NamedDir[]): string[] {
  const { gitignored, ignored } = filter.namedConflicts();
  const flagOf = (rel: string) => named.find((dir) => dir.rel === rel)?.flag ?? "--watch";
  return [
    ...gitignored.map((rel) =>
      `${rel}/ is named with ${flagOf(rel)} and listed in a .gitignore: watched all the same ` +
      `(a directory you name beats an ignore file)`
    ),
    ...ignored.map((rel) =>
      `${rel}/ is named with ${flagOf(rel)} but an --ignore glob covers it: not watched`
    ),
  ];
}

/**
 * Throws the one-line error `createWatcher` would give for a missing root or
 * `--watch` path, without watching: so a start is refused before anything
 * is created.
 */
export function checkWatchPaths(root: string, paths: readonly string[]): void {
  resolveRoots(realDir(root), paths);
}

function positive(name: string, v: number | undefined, def: number, allowZero: boolean): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new Error(
      `${name} must be a ${allowZero ? "non-negative" : "positive"} number of ms, got ${v}`,
    );
  }
  return v;
}

/** `createWatcher` with injectable dependencies. */
export async function createWatcherWith(
  options: WatchOptions,
  deps: WatcherDeps = {},
): Promise<InternalWatcher> {
  if (typeof options.onBatch !== "function") {
    throw new Error("createWatcher needs an onBatch callback");
  }
  const rootAbs = realDir(options.root);
  const also = options.alsoFiles ?? [];
  const named = namedDirectories(rootAbs, options.paths ?? [], options.namedDirs ?? []);
  const roots = resolveRoots(rootAbs, [
    ...(options.paths?.length ? options.paths : [rootAbs]),
    ...also,
    // A named directory that does not exist yet cannot be watched on its own (yet).
    ...named.filter((dir) => dir.exists).map((dir) => dir.abs),
  ]);
  const extensions = options.extensions?.length ? options.extensions : DEFAULT_EXTENSIONS;
  const debounceMs = positive("debounce", options.debounceMs, DEFAULT_EVENTS_DEBOUNCE_MS, true);
  const mode = options.poll?.mode ?? "auto";
  if (mode !== "auto" && mode !== "force" && mode !== "never") {
    throw new Error(`poll mode must be auto, force or never, got ${String(mode)}`);
  }
  const intervalMs = positive("poll interval", options.poll?.intervalMs, DEFAULT_POLL_MS, false);
  const filter = new PathFilter({
    root: rootAbs,
    extensions,
    ignore: options.ignore,
    gitignore: options.gitignore ?? true,
    explicitFiles: [
      ...roots.filter((r) => r.only !== undefined).map((r) => r.rel),
      ...also.map((file) => toRel(rootAbs, isAbsolute(file) ? file : resolve(rootAbs, file))),
    ],
    namedDirs: named.map((dir) => dir.rel),
  });
  const notes = namedNotes(filter, named);
  const unseen = (path: string) => whyUnseen(rootAbs, roots, filter, path);
  const ctx: Context = {
    rootAbs,
    roots,
    filter,
    debounceMs,
    onBatch: options.onBatch,
    onNote: options.onNote,
  };

  let sysInfo: { mounts: string; osRelease: string } | undefined;
  const sys = () => sysInfo ??= (deps.systemInfo ?? readSystemInfo)();
  const poll = (fallbackReason?: string): InternalWatcher => {
    // Descriptors are only kept, and file times only trusted, on local filesystems (see poll.ts).
    const mounts = parseMounts(sys().mounts);
    const local = !roots.some((r) => isNoInotifyFs(findMount(mounts, r.abs)?.fsType ?? ""));
    // The poller's own default quiet time, unless the user chose one.
    const pollCtx = options.debounceMs === undefined
      ? { ...ctx, debounceMs: DEFAULT_POLL_DEBOUNCE_MS }
      : ctx;
    const b = new PollBackend(pollCtx, {
      intervalMs,
      prober: deps.prober,
      holdFds: local,
      localClock: local,
    });
    b.start();
    return {
      backend: "poll",
      fallbackReason,
      notes,
      unseen,
      prober: b.prober,
      pollStats: () => b.stats,
      close: () => b.close(),
    };
  };
  if (mode === "force") return poll();

  if (mode === "auto") {
    for (const r of roots) {
      const d = chooseBackend({ mounts: sys().mounts, osRelease: sys().osRelease, path: r.abs });
      if (d.backend === "poll") return poll(d.reason);
    }
  }
  const events = new EventsBackend(ctx, deps.watchFs ?? Deno.watchFs, deps.schedule);
  try {
    events.start();
  } catch (err) {
    await events.close();
    const where = roots.map((r) => r.abs).join(", ");
    const msg = err instanceof Error ? err.message : String(err);
    if (mode === "never") {
      throw new Error(
        `cannot watch ${where} with Deno.watchFs (${msg}) and polling is off (--no-poll); raise fs.inotify.max_user_watches / max_user_instances or drop --no-poll`,
      );
    }
    return poll(`Deno.watchFs failed on ${where} (${msg}); inotify limits may be exhausted`);
  }
  return { backend: "events", notes, unseen, close: () => events.close() };
}
