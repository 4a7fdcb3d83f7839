/**
 * The dashboard's data contract: what the page (`page.js`) and `hotreload
 * monit` receive, as one self-describing JSON message per update, the
 * {@link DashboardUpdate}. Every update is whole (no deltas), so a page that
 * connects, reconnects or misses one needs nothing but the next. It is made by
 * DashboardState (state.ts) and sent by DashboardServer (server.ts) as one
 * Server-Sent Event.
 *
 * What an update may hold is bounded (the limits below), and it holds nothing
 * of the environment or of any file's contents: the instance's status (as
 * `status --json` reports it), file names that triggered reloads, and the last
 * lines the app itself printed.
 */
import type { StatusReport, StatusRow } from "../control/protocol.ts";

/** `type` of every update: a page checks it before it trusts the rest. */
export const UPDATE_TYPE = "hotreload.dashboard.update";
/** Bumped when a field changes meaning or goes away (added fields do not bump it). */
export const UPDATE_VERSION = 1;

/** How far back the charts' history goes. */
export const HISTORY_MS = 5 * 60_000;
/**
 * Requests/s is measured over this long: workers report their request count
 * once a second, out of phase with the sampling, so a one-second difference
 * jumps between 0 and twice the rate; over 5 s it is off by a fifth at worst.
 */
export const RATE_WINDOW_MS = 5_000;
/** The most worker series an update charts (the newest ones; the table shows every child). */
export const MAX_SERIES = 32;
/** The most points one series keeps (one a second over HISTORY_MS, with room for extra samples). */
export const MAX_POINTS = 600;
/** The most reloads the timeline keeps. */
export const MAX_RELOADS = 50;
/** The most file names one reload entry lists; the rest are counted in `moreFiles`. */
export const MAX_RELOAD_FILES = 20;
/** A file name or a reload's message longer than this is cut (ending in "…"). */
export const MAX_TEXT_CHARS = 500;
/** The most output lines an update carries. */
export const MAX_LINES = 100;
/** An output line longer than this is cut (`cut: true`). */
export const MAX_LINE_CHARS = 1_000;

/** The instance: exactly what `status --json` reports as `supervisor`. */
export type DashboardInstance = StatusReport["supervisor"];

/** One child, as `status --json` reports it, and its request rate. */
export interface DashboardRow extends StatusRow {
  /**
   * Requests per second over the last RATE_WINDOW_MS (less for a process
   * younger than that); null for custom processes, and until a process has
   * been sampled twice at least a second apart.
   */
  requestsPerSecond: number | null;
}

/** What asked for a reload. */
export type ReloadTrigger =
  /** Files changed (`files` names them). */
  | "files"
  /** `hotreload reload`. */
  | "reload"
  /** SIGHUP to the supervisor (`systemctl reload`). */
  | "SIGHUP"
  /** SIGUSR2: the custom processes only. */
  | "SIGUSR2"
  /** This instance took another over (`run --takeover`, `hotreload upgrade`). */
  | "takeover"
  /** This instance succeeded a supervisor that died, and drained its workers. */
  | "succession"
  /** Anything else the supervisor names in `reason`. */
  | "other";

/** One reload on the timeline (a takeover and a succession count as one too). */
export interface ReloadEntry {
  /** The generation the reload rolled out (for a takeover or succession: this instance's). */
  generation: number;
  trigger: ReloadTrigger;
  /**
   * The supervisor's own words for what asked: "change", "reload command",
   * "SIGHUP"; a follow-up that merged several says them all
   * ("change, reload command").
   */
  reason: string;
  /** The changed files (paths as the supervisor logs them), the first MAX_RELOAD_FILES. */
  files: string[];
  /** How many more files changed than `files` lists. */
  moreFiles: number;
  /** When it began (ms since the epoch). */
  startedAt: number;
  /** When it ended, done or aborted; null while it runs. */
  endedAt: number | null;
  /**
   * Milliseconds from its start until every response came from new code: the
   * reload was done, no old worker was left to take a connection. Null while
   * it runs and when it was aborted. For a takeover: until the old instance
   * was gone (an upper bound: its workers had stopped taking connections before).
   */
  allNewMs: number | null;
  outcome: "running" | "done" | "aborted";
  /** Done: the supervisor's summary; aborted: why (its first line); running: null. */
  message: string | null;
}

/** One line a child printed, as `hotreload run` relays it. */
export interface OutputLine {
  /** Increases by one per line the producer was given: a page appends only what it has not shown. */
  seq: number;
  /** When it was relayed (ms since the epoch). */
  at: number;
  /** The relay's prefix without its brackets: `worker 2 1234`, `queue#0 1240`. */
  source: string;
  role: "worker" | "process";
  id: number | string;
  pid: number;
  stream: "stdout" | "stderr";
  /**
   * The text as the app printed it, but terminal escape sequences and other
   * control characters removed (tabs kept); untrusted: a page must show it as
   * text, never as markup.
   */
  text: string;
  /** True when the text was cut at MAX_LINE_CHARS. */
  cut: boolean;
}

/**
 * One worker process over time: one series per pid, so a reload ends the old
 * process's line and starts the new one's. Parallel arrays, oldest first.
 */
export interface WorkerSeries {
  pid: number;
  /** The worker slot (0-based): the same across reloads, so a page can colour by it. */
  id: number | string;
  generation: number | null;
  /** Sample times, ms since the epoch. */
  at: number[];
  /** Requests/s at each sample (null: not known yet). */
  requestsPerSecond: Array<number | null>;
  /** Resident memory at each sample (null: not sampled). */
  rssBytes: Array<number | null>;
}

/** Everything a dashboard shows, whole: one message per update. */
export interface DashboardUpdate {
  type: typeof UPDATE_TYPE;
  version: typeof UPDATE_VERSION;
  /** When it was made (ms since the epoch); the charts end here. */
  at: number;
  instance: DashboardInstance;
  /** One row per child, in `status`'s order: workers, spares, custom processes. */
  children: DashboardRow[];
  /** Workers over the last `windowMs` (at most MAX_SERIES series, the newest). */
  history: { windowMs: number; rateWindowMs: number; series: WorkerSeries[] };
  /** The reload timeline, newest first (at most MAX_RELOADS). */
  reloads: ReloadEntry[];
  /** The last lines the children printed, oldest first (at most MAX_LINES). */
  output: OutputLine[];
}
