/**
 * Which child runs which files: the module graph of each kind of child (the
 * workers' entry, each custom process's entry), from `deno info --json` with
 * the user's resolution flags (`--config`, `--import-map`, `--lock`, ...),
 * local files only (`npm:`, `jsr:`, `node:` and remote modules stay out),
 * plus the scripts its modules start as Web Workers and what those import
 * (worker_scripts.ts), every file under its canonical path too
 * (canonical.ts).
 *
 * What a change reloads is decided in reload_scope.ts, file by file, each by
 * a named rule. This module keeps the graphs and knows which are current: a
 * graph is stale from the moment a change touches a file it holds until it
 * has been computed again, which happens in the background at start and once
 * edits pause after a reload (a change never waits for it), one computation
 * at a time, at a low CPU priority (child/low_priority.ts), and ended when
 * the supervisor stops; meanwhile the last known graph still decides.
 *
 * A computed `import()` is invisible to a static graph: `--worker-dir`
 * names directories whose files belong to the workers, a process's `watch`
 * those that belong to it.
 *
 * @module
 */
import { relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { spawnAtLowPriority } from "../child/low_priority.ts";
import { canonical, canonicalSync } from "../watch/canonical.ts";
import { type ChangedFile, decideBatch, type KindView, type ReloadScope } from "./reload_scope.ts";
import { resolutionFlags } from "./type_check.ts";
import { workerScripts } from "./worker_scripts.ts";
import type { Change } from "../watch/types.ts";

export type { ReloadScope } from "./reload_scope.ts";
/** The entries whose graphs are computed. */
export interface GraphEntries {
  workers: { entry: string; denoFlags: string[] };
  /** `dirs`: the process's `watch` directories, whose files are its own (relative to the cwd). */
  processes: Array<{ name: string; entry: string; denoFlags: string[]; dirs?: string[] }>;
}

/** What `status` shows of the graphs. */
export interface GraphsStatus {
  current: boolean;
  workers: number;
  processes: Record<string, number>;
}

/** How long after the last reload the graphs are computed again. */
const REFRESH_QUIET_MS = 1000;

/**
 * How long a module created while the graphs are computed again waits
 * before it is decided again (`wait-new` in reload_scope.ts). Vite removes
 * its config's timestamp file a few ms after writing it; this leaves room
 * for a machine busy starting the workers of the last reload.
 */
const RECHECK_MS = 250;

/** Source files larger than this are not read for `new Worker(...)`: generated bundles. */
const MAX_SCANNED_BYTES = 4 * 1024 * 1024;

/** Files a change to which may change what a module graph holds: modules. */
const MODULE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;

/** The absolute paths of the local modules in `deno info --json` output. */
export function localModules(info: unknown): Set<string> {
  const files = new Set<string>();
  const modules = (info as { modules?: Array<{ specifier?: unknown }> })?.modules;
  if (!Array.isArray(modules)) throw new Error("deno info printed no module list");
  for (const module of modules) {
    const specifier = module?.specifier;
    if (typeof specifier !== "string" || !specifier.startsWith("file://")) continue;
    files.add(decodeURIComponent(new URL(specifier).pathname));
  }
  return files;
}

/** One kind of child: its entry, its last known graph, and whether that is stale. */
interface Kind {
  /** A custom process's name; undefined for the workers. */
  process?: string;
  entry: string;
  denoFlags: string[];
  /** Canonical directories whose files are its own. */
  dirs: string[];
  /** Paths as imported and canonical paths of its modules; undefined until computed. */
  files?: Set<string>;
  /** Its modules' canonical paths. */
  real: string[];
  /** How many modules that is (each counted once, by its canonical path). */
  count: number;
  /** Bumped by every change that touches a file this kind holds (or may read). */
  touched: number;
  /** `touched` when the computation of `files` began: equal means current. */
  computedAt: number;
}

export interface ModuleGraphOptions {
  deno: string;
  cwd: string;
  entries: GraphEntries;
  /** Directories whose files belong to the workers (absolute). */
  workerDirs: string[];
  /** Says, once, why the graphs cannot be used (every change then reloads everything). */
  onUnavailable(why: string): void;
  /** Hands files back to be decided again (`wait-new`): as a change batch of its own. */
  recheck(changes: Change[]): void;
  /** Why the watcher would never report a change of a file (absolute), if it would not. */
  unseen?(path: string): string | undefined;
  /**
   * Says which modules a kind runs whose changes are never reported (each
   * file once): paths relative to the cwd, each with why.
   */
  onUnseen?(process: string | undefined, files: Array<{ file: string; why: string }>): void;
}

export class ModuleGraphs {
  readonly #options: ModuleGraphOptions;
  readonly #kinds: Kind[];
  /** The project directory as the watcher sees it: its paths are relative to the real one. */
  readonly #root: string;
  /** The computation under way, if any, and the one queued to follow it. */
  #computing?: Promise<void>;
  #next?: Promise<void>;
  /** The `deno info` commands running. */
  readonly #commands = new Set<Deno.ChildProcess>();
  #stopped = false;
  #said = false;
  #unavailable = false;
  #pending?: ReturnType<typeof setTimeout>;
  /** Files waiting to be decided again (`wait-new`), by reported path. */
  readonly #waiting = new Set<string>();
  /** Modules already said to be unseen by the watcher. */
  readonly #saidUnseen = new Set<string>();

  constructor(options: ModuleGraphOptions) {
    this.#options = options;
    this.#root = canonicalSync(options.cwd);
    const { workers, processes } = options.entries;
    this.#kinds = [
      {
        ...workers,
        dirs: options.workerDirs.map((dir) => canonicalSync(dir, this.#root)),
        real: [],
        count: 0,
        touched: 0,
        computedAt: 0,
      },
      ...processes.map((p) => ({
        entry: p.entry,
        denoFlags: p.denoFlags,
        process: p.name,
        dirs: (p.dirs ?? []).map((dir) => canonicalSync(dir, this.#root)),
        real: [],
        count: 0,
        touched: 0,
        computedAt: 0,
      })),
    ];
  }

  /**
   * Computes every graph again once `quietMs` pass with no other call here:
   * while edits follow each other, `deno info` would compete for the CPU
   * with the very workers the next edit starts.
   */
  refreshSoon(quietMs = REFRESH_QUIET_MS): void {
    clearTimeout(this.#pending);
    this.#pending = setTimeout(() => void this.refresh(), quietMs);
    Deno.unrefTimer(this.#pending);
  }

  /**
   * Computes every graph again, in the background. One computation at a
   * time: at a low priority, on cores the workers keep busy, `deno info`
   * may take seconds, and a second one beside it would only slow both. A
   * request while one runs is met by one more computation once it ends (what
   * changed meanwhile keeps its graphs stale until then).
   */
  refresh(): Promise<void> {
    clearTimeout(this.#pending);
    if (this.#stopped) return Promise.resolve();
    if (!this.#computing) return this.#compute();
    this.#next ??= this.#computing.then(() => {
      this.#next = undefined;
      return this.#compute();
    });
    return this.#next;
  }

  #compute(): Promise<void> {
    // What each graph will be current for: changes from now on make it stale again.
    const at = this.#kinds.map((kind) => kind.touched);
    const computing = Promise.all(this.#kinds.map((kind) => this.#graphOf(kind))).then(
      (graphs) => {
        if (this.#stopped) return;
        this.#kinds.forEach((kind, i) => {
          kind.files = graphs[i].files;
          kind.real = graphs[i].real;
          kind.count = graphs[i].real.length;
          kind.computedAt = at[i];
        });
        this.#unavailable = false;
        this.#sayUnseen();
      },
      (error) => {
        if (this.#stopped) return;
        for (const kind of this.#kinds) kind.files = undefined;
        this.#unavailable = true;
        if (!this.#said) {
          this.#said = true;
          this.#options.onUnavailable((error as Error).message);
        }
      },
    ).finally(() => {
      this.#computing = undefined;
    });
    this.#computing = computing;
    return computing;
  }

  /**
   * The supervisor stops: no graph is computed any more, and a `deno info`
   * still running ends now (in a session of its own, a stop's signals do not
   * reach it, and at a low priority on a busy machine it could outlive the
   * supervisor by seconds).
   */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#pending);
    for (const command of this.#commands) {
      try {
        Deno.kill(-command.pid, "SIGKILL"); // its process group: it leads one (detached)
      } catch { /* ended already */ }
    }
  }

  /**
   * For `status`: whether the graphs are current (false while one is
   * computed again after a change touched it), and how many local files
   * each holds; null when they cannot be computed (every change reloads
   * everything).
   */
  describe(): GraphsStatus | null {
    if (this.#unavailable) return null;
    const [workers, ...processes] = this.#kinds;
    return {
      current: this.#kinds.every((kind) => kind.files && kind.touched === kind.computedAt),
      workers: workers.count,
      processes: Object.fromEntries(processes.map((kind) => [kind.process!, kind.count])),
    };
  }

  /**
   * A reload began: no graph is computed while it runs (a computation
   * already under way goes on; the changes that made its graphs stale
   * keep them stale). The refresh follows the reload (`refreshSoon`).
   */
  invalidate(): void {
    clearTimeout(this.#pending);
  }

  /** What the changes (paths relative to the cwd, or absolute) reload, and why. */
  scope(changes: Array<Change | string>): ReloadScope {
    const files = changes.map((change) => this.#fact(change));
    const kinds: KindView[] = this.#kinds.map((kind) => ({
      process: kind.process,
      files: kind.files,
      dirs: kind.dirs,
      stale: kind.touched !== kind.computedAt,
    }));
    const scope = decideBatch(files, kinds);
    scope.decisions.forEach((decision, i) => {
      if (decision.rule !== "wait-new") this.#waiting.delete(decision.file);
      // A graph is stale until computed again once a file that can change what it imports has
      // changed: one it holds (or may hold now), or any file that is not a module (deno.json,
      // an import map). A file of a --worker-dir that it does not import cannot.
      const touched = decision.reloads === "everything"
        ? this.#kinds
        : this.#kinds.filter((kind) =>
          (decision.reloads as unknown[]).includes(kind.process) &&
          (decision.rule !== "named-dir" || files[i].forms.some((form) => kind.files?.has(form)))
        );
      for (const kind of touched) kind.touched++;
    });
    this.#recheckLater(scope.recheck);
    return scope;
  }

  /**
   * A module a child runs whose edits the watcher never reports (outside the
   * watched paths, behind a link to such a place, ignored) is an edit
   * dropped without a word: say so, once per file, naming why. Packages
   * (`node_modules`) are the lock's business.
   */
  #sayUnseen(): void {
    const { unseen, onUnseen } = this.#options;
    if (!unseen || !onUnseen) return;
    for (const kind of this.#kinds) {
      const files = kind.real.flatMap((file) => {
        if (this.#saidUnseen.has(file) || file.includes("/node_modules/")) return [];
        const why = unseen(file);
        if (why === undefined) return [];
        this.#saidUnseen.add(file);
        return [{ file: relative(this.#root, file) || file, why }];
      });
      if (files.length > 0) onUnseen(kind.process, files);
    }
  }

  /** What a changed file is now: its canonical forms, whether it exists, whether it is new. */
  #fact(change: Change | string): ChangedFile {
    const { path, kind } = typeof change === "string" ? { path: change, kind: "changed" } : change;
    const absolute = path.startsWith("/") ? path : `${this.#root}/${path}`;
    const real = canonicalSync(absolute);
    let exists = false;
    try {
      exists = Deno.statSync(real).isFile;
    } catch { /* gone */ }
    return {
      path,
      // deno info names a module by the path it was imported through: a link stays a link.
      forms: [...new Set([real, resolve(absolute)])],
      module: MODULE.test(path) || MODULE.test(real),
      exists,
      fresh: kind === "added" && !this.#waiting.has(path),
    };
  }

  #recheckLater(paths: string[]): void {
    const fresh = paths.filter((path) => !this.#waiting.has(path));
    if (fresh.length === 0) return;
    for (const path of fresh) this.#waiting.add(path);
    const timer = setTimeout(() => {
      // Decided meanwhile (a later batch removed it): nothing to hand back.
      const still = fresh.filter((path) => this.#waiting.has(path));
      if (still.length > 0) {
        this.#options.recheck(still.map((path) => ({ path, kind: "changed" })));
      }
    }, RECHECK_MS);
    Deno.unrefTimer(timer);
  }

  /**
   * A kind's graph: its entry's modules, then the worker scripts they start
   * and those scripts' modules, until no new script turns up; each file
   * under the path it was imported by and its canonical path.
   */
  async #graphOf(kind: Kind): Promise<{ files: Set<string>; real: string[] }> {
    const files = await this.#info(kind.entry, kind.denoFlags);
    const scanned = new Set<string>();
    const started = new Set<string>();
    while (true) {
      const scripts = new Set<string>();
      for (const file of [...files].filter((file) => !scanned.has(file))) {
        scanned.add(file);
        for (const script of await scriptsStartedBy(file)) {
          if (!started.has(script)) scripts.add(script);
        }
      }
      if (scripts.size === 0) break;
      const graphs = await Promise.all(
        [...scripts].map((script) => {
          started.add(script);
          // A script that does not exist yet still belongs here: its creation reloads.
          files.add(script);
          return this.#info(script, kind.denoFlags).catch(() => new Set<string>());
        }),
      );
      for (const graph of graphs) for (const file of graph) files.add(file);
    }
    const real = await Promise.all([...files].map((file) => canonical(file)));
    for (const file of real) files.add(file);
    return { files, real: [...new Set(real)] };
  }

  async #info(entry: string, denoFlags: string[]): Promise<Set<string>> {
    const args = ["info", "--json", ...resolutionFlags(denoFlags, INFO_FLAGS), entry];
    // At a low CPU priority, for real (child/low_priority.ts): the workers come first.
    const command = spawnAtLowPriority(this.#options.deno, {
      args,
      cwd: this.#options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    });
    this.#commands.add(command);
    const output = await command.output().finally(() => this.#commands.delete(command));
    if (!output.success) {
      const error = new TextDecoder().decode(output.stderr).trim().split("\n")[0];
      throw new Error(`deno info ${entry} failed: ${error.slice(0, 200)}`);
    }
    return localModules(JSON.parse(new TextDecoder().decode(output.stdout)));
  }
}

/** The worker scripts a local module starts; none when it cannot be read. */
async function scriptsStartedBy(file: string): Promise<string[]> {
  if (!MODULE.test(file)) return [];
  try {
    if ((await Deno.stat(file)).size > MAX_SCANNED_BYTES) return [];
    return workerScripts(await Deno.readTextFile(file), pathToFileURL(file).href);
  } catch {
    return [];
  }
}

/** Flags of `deno run` that `deno info` accepts and that shape module resolution. */
const INFO_FLAGS = new Set([
  "import-map",
  "config",
  "c",
  "no-config",
  "lock",
  "no-lock",
  "node-modules-dir",
  "vendor",
  "no-remote",
  "no-npm",
  "cert",
  "location",
  "allow-import",
  "I",
  "cached-only",
]);
