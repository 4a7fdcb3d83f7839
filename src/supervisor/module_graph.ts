/**
 * Which child runs which files: the module graph of each kind of child (the
 * workers' entry, each custom process's entry), from `deno info --json` with
 * the user's resolution flags (`--config`, `--import-map`, `--lock`, ...),
 * local files only (`npm:`, `jsr:`, `node:` and remote modules stay out).
 *
 * A change reloads exactly the kinds whose graph holds a changed file. A
 * module file in no graph (a test, a script) reloads nothing. A file that is
 * not a module (a `.json` or template read at run time, an env file,
 * `deno.json`, the lock) reloads everything, as does any change while the
 * graphs are unknown. The graphs are computed in the background, at start
 * and once edits pause after a reload (a change never waits for them); while they are
 * being computed again, a module file that the last graphs did not hold
 * (an import the last edit may have added) reloads everything.
 *
 * A computed `import()` is invisible to a static graph: `--worker-dir`
 * names directories whose files belong to the workers.
 *
 * @module
 */
import { resolutionFlags } from "./type_check.ts";

/** The entries whose graphs are computed. */
export interface GraphEntries {
  workers: { entry: string; denoFlags: string[] };
  processes: Array<{ name: string; entry: string; denoFlags: string[] }>;
}

/** What `status` shows of the graphs. */
export interface GraphsStatus {
  current: boolean;
  workers: number;
  processes: Record<string, number>;
}

/** What a batch of changed files reloads. */
export type ReloadScope =
  | { kind: "everything" }
  | { kind: "some"; workers: boolean; processes: string[] }
  | { kind: "nothing" };

/** How long after the last reload the graphs are computed again. */
const REFRESH_QUIET_MS = 1000;

/** `nice`, when the system has it where coreutils put it. */
const NICE = ["/usr/bin/nice", "/bin/nice"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

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

interface Graphs {
  workers: Set<string>;
  processes: Map<string, Set<string>>;
}

export interface ModuleGraphOptions {
  deno: string;
  cwd: string;
  entries: GraphEntries;
  /** Directories whose files belong to the workers (absolute). */
  workerDirs: string[];
  /** Says, once, why the graphs cannot be used (every change then reloads everything). */
  onUnavailable(why: string): void;
}

export class ModuleGraphs {
  readonly #options: ModuleGraphOptions;
  #graphs?: Graphs;
  /** True from a refresh until its graphs are in. */
  #stale = true;
  #run = 0;
  #said = false;
  #pending?: ReturnType<typeof setTimeout>;

  constructor(options: ModuleGraphOptions) {
    this.#options = options;
  }

  /**
   * Computes every graph again once `quietMs` pass with no other call here:
   * while edits follow each other, `deno info` would compete for the CPU
   * with the very workers the next edit starts.
   */
  refreshSoon(quietMs = REFRESH_QUIET_MS): void {
    clearTimeout(this.#pending);
    this.#stale = true;
    this.#pending = setTimeout(() => void this.refresh(), quietMs);
    Deno.unrefTimer(this.#pending);
  }

  /** Computes every graph again, in the background. */
  refresh(): Promise<void> {
    clearTimeout(this.#pending);
    const run = ++this.#run;
    this.#stale = true;
    return this.#compute().then(
      (graphs) => {
        if (run !== this.#run) return;
        this.#graphs = graphs;
        this.#stale = false;
      },
      (error) => {
        if (run !== this.#run) return;
        this.#graphs = undefined;
        if (!this.#said) {
          this.#said = true;
          this.#options.onUnavailable((error as Error).message);
        }
      },
    );
  }

  /**
   * For `status`: whether the graphs are current (false while computed again
   * after a reload), and how many local files each holds; null when they
   * cannot be computed (every change reloads everything).
   */
  describe(): GraphsStatus | null {
    if (!this.#graphs) return this.#said ? null : { current: false, workers: 0, processes: {} };
    return {
      current: !this.#stale,
      workers: this.#graphs.workers.size,
      processes: Object.fromEntries(
        [...this.#graphs.processes].map(([name, graph]) => [name, graph.size]),
      ),
    };
  }

  /** The files may have changed the graphs (a reload began): they are not trusted until a refresh. */
  invalidate(): void {
    clearTimeout(this.#pending);
    this.#run++;
    this.#stale = true;
  }

  /** What the changed `files` (relative to the cwd, or absolute) reload. */
  scope(files: string[]): ReloadScope {
    const graphs = this.#graphs;
    if (!graphs) return { kind: "everything" };
    let workers = false;
    const processes = new Set<string>();
    for (const file of files) {
      const path = file.startsWith("/") ? file : `${this.#options.cwd}/${file}`;
      const inWorkers = graphs.workers.has(path) ||
        this.#options.workerDirs.some((dir) => path.startsWith(`${dir}/`));
      const inProcesses = [...graphs.processes].filter(([, graph]) => graph.has(path));
      if (inWorkers) workers = true;
      for (const [name] of inProcesses) processes.add(name);
      if (inWorkers || inProcesses.length > 0) continue;
      // Read at run time (not a module), or maybe imported since the graphs were computed.
      if (!MODULE.test(path) || this.#stale) return { kind: "everything" };
    }
    if (!workers && processes.size === 0) return { kind: "nothing" };
    return { kind: "some", workers, processes: [...processes] };
  }

  async #compute(): Promise<Graphs> {
    const { workers, processes } = this.#options.entries;
    const [workerGraph, ...processGraphs] = await Promise.all([
      this.#graphOf(workers.entry, workers.denoFlags),
      ...processes.map((process) => this.#graphOf(process.entry, process.denoFlags)),
    ]);
    return {
      workers: workerGraph,
      processes: new Map(processes.map((process, i) => [process.name, processGraphs[i]])),
    };
  }

  async #graphOf(entry: string, denoFlags: string[]): Promise<Set<string>> {
    const args = ["info", "--json", ...resolutionFlags(denoFlags, INFO_FLAGS), entry];
    // At the lowest CPU priority: the workers come first.
    const output = await new Deno.Command(NICE ?? this.#options.deno, {
      args: NICE ? ["-n", "19", this.#options.deno, ...args] : args,
      cwd: this.#options.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    if (!output.success) {
      const error = new TextDecoder().decode(output.stderr).trim().split("\n")[0];
      throw new Error(`deno info ${entry} failed: ${error.slice(0, 200)}`);
    }
    return localModules(JSON.parse(new TextDecoder().decode(output.stdout)));
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
