/**
 * Public types of the watcher (re-exported by `mod.ts`).
 *
 * @module
 */

/** What happened to a path during a batch. */
export type ChangeKind = "added" | "changed" | "removed";

/** One changed file. */
export interface Change {
  /** Relative to `WatchOptions.root`, "/"-separated. */
  path: string;
  kind: ChangeKind;
}

/** The changes of one debounce window: deduplicated, sorted by path. */
export interface ChangeBatch {
  changes: Change[];
}

/** How to choose between inotify events and stat polling. */
export interface PollOptions {
  /** auto = events with fallback; force = `--poll <ms>`; never = `--no-poll`. */
  mode: "auto" | "force" | "never";
  /** Poll interval in ms (default 500). */
  intervalMs?: number;
}

/** Options of `createWatcher`. */
export interface WatchOptions {
  /** Project directory (absolute); batch paths are relative to it. */
  root: string;
  /** `--watch` values, absolute or relative to root; default `[root]`. */
  paths?: string[];
  /** `--ext`, without dots; default ts,tsx,js,jsx,mjs,cjs,json,jsonc. "*" watches every file. */
  extensions?: string[];
  /** Files watched whatever `extensions` and the ignore rules say (`--env-file` files). */
  alsoFiles?: string[];
  /**
   * Directories the user named besides `paths` (`--worker-dir`), with the
   * flag that named them: watched too, and, like a directory in `paths`,
   * whatever a `.gitignore` says. One that does not exist yet is watched
   * once it appears, if it is inside a watched directory.
   */
  namedDirs?: Array<{ path: string; flag: string }>;
  /** `--ignore`, gitignore-style globs relative to root. */
  ignore?: string[];
  /** Respect .gitignore files, the root one and nested ones (default true). */
  gitignore?: boolean;
  /** One trailing debounce for the whole tree, in ms (default 50). */
  debounceMs?: number;
  /** Backend choice (default `{ mode: "auto" }`). */
  poll?: PollOptions;
  /** Receives each batch; must not throw. */
  onBatch: (batch: ChangeBatch) => void;
  /** Receives what the user should know while watching (said once each); must not throw. */
  onNote?: (text: string) => void;
}

/** A running watcher. */
export interface Watcher {
  readonly backend: "events" | "poll";
  /** Why polling was chosen automatically (undefined when forced or events). */
  readonly fallbackReason?: string;
  /** What start-up should say about the names given (a named directory a .gitignore lists). */
  readonly notes: string[];
  /**
   * Why a change of the file at `path` (absolute) would never be reported,
   * or undefined when it would: "outside the watched paths", "ignored", or
   * "not a watched extension".
   */
  unseen(path: string): string | undefined;
  /** Stop all timers and OS watchers; idempotent. No batch is delivered afterwards. */
  close(): Promise<void>;
}
