/**
 * DashboardState: what a dashboard shows, kept from what a producer feeds it
 * (status snapshots, reload events, output lines), with every history bounded,
 * and turned into one {@link DashboardUpdate} on demand. Pure: no I/O, no
 * clock of its own (every call says when it is), so the supervisor, `hotreload
 * monit` and the tests drive it alike.
 *
 * Feeding it costs little and nothing grows: a snapshot appends one point per
 * worker, a line replaces the oldest of MAX_LINES, a reload one entry of
 * MAX_RELOADS. Snapshots are worth taking only while someone looks (the
 * supervisor samples /proc for them); reload events and lines are cheap enough
 * to feed always, so a page opened later sees what happened before it.
 */
import type { StatusReport } from "../control/protocol.ts";
import {
  type DashboardRow,
  type DashboardUpdate,
  HISTORY_MS,
  MAX_LINE_CHARS,
  MAX_LINES,
  MAX_POINTS,
  MAX_RELOAD_FILES,
  MAX_RELOADS,
  MAX_SERIES,
  MAX_TEXT_CHARS,
  type OutputLine,
  RATE_WINDOW_MS,
  type ReloadEntry,
  type ReloadTrigger,
  UPDATE_TYPE,
  UPDATE_VERSION,
  type WorkerSeries,
} from "./contract.ts";

/** A reload began (the supervisor's `reload.start`). */
export interface ReloadStart {
  generation: number;
  /** The supervisor's reason: "change", "reload command", "SIGHUP", or several, merged. */
  reason: string;
  files: readonly string[];
  at: number;
}

/** A reload ended (`reload.done` or `reload.aborted`). */
export interface ReloadEnd {
  generation: number;
  ok: boolean;
  /** Done: the summary; aborted: why (only its first line is kept). */
  message: string;
  at: number;
  /**
   * For a reload refused before it began (a broken env file), which was never
   * started: what asked for it.
   */
  reason?: string;
  files?: readonly string[];
}

/** Who printed a line: the shape of src/log/relay.ts's LineSource, so it can be passed as is. */
export interface OutputSource {
  role: "worker" | "process";
  id: number | string;
  /** `worker 2`, `queue#0`. */
  label: string;
  pid: number;
}

/** A sample of one worker process. */
interface Sample {
  at: number;
  /** The worker's count of requests served (its own, since it started). */
  requests: number | null;
  rssBytes: number | null;
  requestsPerSecond: number | null;
}

interface Series {
  pid: number;
  id: number | string;
  generation: number | null;
  samples: Sample[];
}

/** Samples this close to the window's edge still count as inside it (timers are late). */
const WINDOW_SLACK_MS = 250;
/** A rate needs two samples at least this far apart. */
const MIN_RATE_SPAN_MS = 1_000;

/** What a dashboard shows, kept bounded; see the module's comment. */
export class DashboardState {
  #report?: StatusReport;
  /** Worker processes by pid. */
  readonly #series = new Map<number, Series>();
  /** Newest first. */
  #reloads: ReloadEntry[] = [];
  /** Takeovers and successions already on the timeline (they come from snapshots). */
  readonly #derived = new Set<string>();
  #lines: OutputLine[] = [];
  #seq = 0;

  /** A status snapshot (what `status` answers), taken at `now` (ms since the epoch). */
  observe(report: StatusReport, now: number): void {
    this.#report = report;
    for (const row of report.children) {
      if (row.role !== "worker" || row.pid === null) continue;
      let series = this.#series.get(row.pid);
      if (!series) {
        series = { pid: row.pid, id: row.id, generation: row.generation, samples: [] };
        this.#series.set(row.pid, series);
      }
      series.generation = row.generation;
      const samples = series.samples;
      const sample: Sample = {
        at: now,
        requests: row.requests,
        rssBytes: row.rssBytes,
        requestsPerSecond: null,
      };
      sample.requestsPerSecond = rateAt(samples, sample);
      samples.push(sample);
      if (samples.length > MAX_POINTS) samples.splice(0, samples.length - MAX_POINTS);
    }
    this.#prune(now);
    this.#derive(report, now);
  }

  /** A reload began. */
  reloadStarted(start: ReloadStart): void {
    const { files, moreFiles } = boundFiles(start.files);
    const entry: ReloadEntry = {
      generation: start.generation,
      trigger: triggerOf(start.reason, start.files),
      reason: cut(start.reason, MAX_TEXT_CHARS),
      files,
      moreFiles,
      startedAt: start.at,
      endedAt: null,
      allNewMs: null,
      outcome: "running",
      message: null,
    };
    // A generation starts once; a second start of it replaces the first.
    this.#reloads = this.#reloads.filter((old) =>
      !(old.generation === start.generation && old.outcome === "running")
    );
    this.#add(entry);
  }

  /** A reload ended, done or aborted. */
  reloadEnded(end: ReloadEnd): void {
    const message = cut(end.message.split("\n")[0], MAX_TEXT_CHARS);
    const running = this.#reloads.find((entry) =>
      entry.generation === end.generation && entry.outcome === "running"
    );
    if (!running) {
      // Refused before it began, or it began before this state existed: its start is not known.
      const { files, moreFiles } = boundFiles(end.files ?? []);
      this.#add({
        generation: end.generation,
        trigger: triggerOf(end.reason ?? "", end.files ?? []),
        reason: cut(end.reason ?? "", MAX_TEXT_CHARS),
        files,
        moreFiles,
        startedAt: end.at,
        endedAt: end.at,
        allNewMs: null,
        outcome: end.ok ? "done" : "aborted",
        message,
      });
      return;
    }
    running.endedAt = end.at;
    running.outcome = end.ok ? "done" : "aborted";
    running.allNewMs = end.ok ? Math.max(0, Math.round(end.at - running.startedAt)) : null;
    running.message = message;
  }

  /** A line a child printed (as relayed), at `at`. */
  line(source: OutputSource, stream: "stdout" | "stderr", text: string, at: number): void {
    const clean = cleanText(text);
    const cutHere = clean.length > MAX_LINE_CHARS;
    this.#lines.push({
      seq: ++this.#seq,
      at,
      source: `${source.label} ${source.pid}`,
      role: source.role,
      id: source.id,
      pid: source.pid,
      stream,
      text: cutHere ? cut(clean, MAX_LINE_CHARS) : clean,
      cut: cutHere,
    });
    if (this.#lines.length > MAX_LINES) this.#lines.shift();
  }

  /**
   * Forgets the output lines (not their numbering): the producer feeds them
   * again from its buffer when a page connects after none was.
   */
  clearLines(): void {
    this.#lines = [];
  }

  /** True once a snapshot was observed: only then can an update be made. */
  get ready(): boolean {
    return this.#report !== undefined;
  }

  /** The update to send now; throws before the first snapshot (see `ready`). */
  update(now: number): DashboardUpdate {
    const report = this.#report;
    if (!report) throw new Error("DashboardState.update() before any observe()");
    this.#prune(now);
    const rates = new Map<number, number | null>();
    for (const series of this.#series.values()) {
      rates.set(series.pid, series.samples.at(-1)?.requestsPerSecond ?? null);
    }
    const children: DashboardRow[] = report.children.map((row) => ({
      ...row,
      requestsPerSecond: row.role === "worker" && row.pid !== null
        ? rates.get(row.pid) ?? null
        : null,
    }));
    return {
      type: UPDATE_TYPE,
      version: UPDATE_VERSION,
      at: now,
      instance: report.supervisor,
      children,
      history: { windowMs: HISTORY_MS, rateWindowMs: RATE_WINDOW_MS, series: this.#charted() },
      reloads: [...this.#reloads]
        .sort((a, b) => b.startedAt - a.startedAt)
        .map((entry) => ({ ...entry, files: [...entry.files] })),
      output: this.#lines.map((line) => ({ ...line })),
    };
  }

  /** The newest MAX_SERIES series, in the order their processes appeared. */
  #charted(): WorkerSeries[] {
    return [...this.#series.values()]
      .sort((a, b) => b.samples.at(-1)!.at - a.samples.at(-1)!.at)
      .slice(0, MAX_SERIES)
      .sort((a, b) => a.samples[0].at - b.samples[0].at)
      .map((series) => ({
        pid: series.pid,
        id: series.id,
        generation: series.generation,
        at: series.samples.map((s) => s.at),
        requestsPerSecond: series.samples.map((s) => s.requestsPerSecond),
        rssBytes: series.samples.map((s) => s.rssBytes),
      }));
  }

  /** Drops samples older than the history and series left with none. */
  #prune(now: number): void {
    const oldest = now - HISTORY_MS;
    for (const [pid, series] of this.#series) {
      const keep = series.samples.findIndex((sample) => sample.at >= oldest);
      if (keep === -1) this.#series.delete(pid);
      else if (keep > 0) series.samples.splice(0, keep);
    }
  }

  #add(entry: ReloadEntry): void {
    this.#reloads.unshift(entry);
    if (this.#reloads.length > MAX_RELOADS) {
      // The oldest by start time goes, whatever order entries came in.
      this.#reloads.sort((a, b) => b.startedAt - a.startedAt);
      this.#reloads.length = MAX_RELOADS;
    }
  }

  /** A takeover or a succession is on the timeline from the first snapshot that says so. */
  #derive(report: StatusReport, now: number): void {
    const s = report.supervisor;
    if (s.tookOver && !this.#derived.has(`takeover:${s.tookOver.pid}`)) {
      this.#derived.add(`takeover:${s.tookOver.pid}`);
      const endedAt = timeOf(s.tookOver.at, now);
      this.#add({
        generation: s.generation,
        trigger: "takeover",
        reason: "takeover",
        files: [],
        moreFiles: 0,
        startedAt: endedAt - s.tookOver.afterMs,
        endedAt,
        allNewMs: s.tookOver.afterMs,
        outcome: "done",
        message: `took over supervisor pid ${s.tookOver.pid}${versionOf(s.tookOver.version)}; ` +
          `it was gone ${s.tookOver.afterMs} ms after this one started`,
      });
    }
    if (s.succeeded && !this.#derived.has(`succession:${s.succeeded.pid}`)) {
      this.#derived.add(`succession:${s.succeeded.pid}`);
      const at = timeOf(s.succeeded.at, now);
      this.#add({
        generation: s.generation,
        trigger: "succession",
        reason: "succession",
        files: [],
        moreFiles: 0,
        startedAt: at,
        endedAt: at,
        allNewMs: null,
        outcome: "done",
        message: `succeeded supervisor pid ${s.succeeded.pid}${versionOf(s.succeeded.version)}, ` +
          `which had died: its ${s.succeeded.workers} worker(s) served meanwhile, then drained`,
      });
    }
  }
}

/**
 * Requests/s at `sample`: the count's growth since the oldest earlier sample
 * inside RATE_WINDOW_MS; null without one at least MIN_RATE_SPAN_MS before.
 */
function rateAt(earlier: readonly Sample[], sample: Sample): number | null {
  if (sample.requests === null) return null;
  const from = earlier.find((s) =>
    s.requests !== null && s.at >= sample.at - RATE_WINDOW_MS - WINDOW_SLACK_MS
  );
  if (!from || sample.at - from.at < MIN_RATE_SPAN_MS) return null;
  const rate = (sample.requests - from.requests!) / ((sample.at - from.at) / 1000);
  return Math.max(0, Math.round(rate * 100) / 100);
}

/** What asked for a reload, from the supervisor's reason and files. */
export function triggerOf(reason: string, files: readonly string[]): ReloadTrigger {
  if (files.length > 0) return "files";
  // A follow-up merges its requests' reasons ("reload command, SIGHUP"): the first asked first.
  const first = reason.split(", ")[0];
  if (first === "reload command" || first === "reload") return "reload";
  if (first === "SIGHUP" || first === "SIGUSR2") return first;
  if (first === "takeover" || first === "succession") return first;
  if (first === "change") return "files";
  return "other";
}

// Terminal escape sequences (CSI, OSC, and two-byte ESC ones), then every other control
// character but the tab: a page shows text, not colours, and a stray ESC only garbles it.
// deno-lint-ignore no-control-regex
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?/g;
// deno-lint-ignore no-control-regex
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g;

/** A line of output without terminal escapes and control characters (tabs kept). */
export function cleanText(text: string): string {
  return text.replace(ESCAPES, "").replace(CONTROLS, "");
}

/** `text`, cut to at most `max` characters (ending in "…"), never inside a surrogate pair. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

function boundFiles(all: readonly string[]): { files: string[]; moreFiles: number } {
  return {
    files: all.slice(0, MAX_RELOAD_FILES).map((file) => cut(file, MAX_TEXT_CHARS)),
    moreFiles: Math.max(0, all.length - MAX_RELOAD_FILES),
  };
}

function timeOf(iso: string, fallback: number): number {
  const at = Date.parse(iso);
  return Number.isFinite(at) ? at : fallback;
}

function versionOf(version: string | null): string {
  return version ? ` (hotreload ${version})` : "";
}
