/**
 * The dashboard as the supervisor runs it: a {@link DashboardState} fed by
 * the supervisor (status snapshots, reload events, output lines) and a
 * {@link DashboardServer} that the `--metrics` port hands its requests to.
 *
 * Nothing runs for it while no page is connected: the status (which samples
 * /proc) is taken only when an update is due to a page, and the output buffer
 * is subscribed to only while a page is connected (when one connects after
 * none was, it catches up from the buffer's last lines). Reload events, a few
 * a minute at most, are always kept, so a page opened later shows them.
 */
import type { StatusReport } from "../control/protocol.ts";
import { MAX_LINES } from "./contract.ts";
import { DashboardServer } from "./server.ts";
import { tapRelayedLines } from "../log/relay.ts";
import { DashboardState, type OutputSource, type ReloadEnd, type ReloadStart } from "./state.ts";

/** One line a child printed, as an output buffer keeps it. */
export interface BufferedLine {
  /** When it was relayed (ms since the epoch). */
  at: number;
  stream: "stdout" | "stderr";
  source: OutputSource;
  text: string;
}

/**
 * The shape of the bounded output buffer `hotreload logs` reads
 * (src/log/output_buffer.ts's OutputBuffer): the dashboard takes any object
 * with it, so the real buffer replaces {@link RecentLines} without a change here.
 */
export interface LineBuffer {
  push(line: BufferedLine): void;
  /** The last `n` lines, oldest first. */
  lines(n: number): readonly BufferedLine[];
  /** Calls `listener` with each line pushed from now on; returns how to stop. */
  subscribe(listener: (line: BufferedLine) => void): () => void;
}

/**
 * A small bounded {@link LineBuffer}: the dashboard's output until the real
 * one (src/log/output_buffer.ts) is wired in.
 */
export class RecentLines implements LineBuffer {
  #lines: BufferedLine[] = [];
  readonly #listeners = new Set<(line: BufferedLine) => void>();

  /** Keeps the last `max` lines. */
  constructor(readonly max = MAX_LINES) {}

  /** Adds a line (the oldest goes beyond `max`) and hands it to every subscriber. */
  push(line: BufferedLine): void {
    this.#lines.push(line);
    if (this.#lines.length > this.max) this.#lines.shift();
    for (const listener of this.#listeners) listener(line);
  }

  /** The last `n` lines, oldest first. */
  lines(n: number): readonly BufferedLine[] {
    return n <= 0 ? [] : this.#lines.slice(-n);
  }

  /** Calls `listener` with each line pushed from now on; returns how to stop. */
  subscribe(listener: (line: BufferedLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

/** What the supervisor gives its dashboard. */
export interface DashboardOptions {
  /** The status as `hotreload status --json` reports it; called only when a page is due an update. */
  status: () => StatusReport;
  /** The children's output. */
  output: LineBuffer;
  /** The host `--metrics` is bound to (requests naming it in Host are answered). */
  hostname?: string;
  /** The wall clock (ms since the epoch). */
  now?: () => number;
  /** Called once the dashboard is closed. */
  onClose?: () => void;
}

/**
 * The supervisor's dashboard, fed with the children's lines as the relay
 * hands them over (who, which stream, when: log/relay.ts), kept in its own
 * bounded copy beside the buffer `hotreload logs` reads.
 */
export function relayedDashboard(options: Omit<DashboardOptions, "output" | "onClose">): Dashboard {
  const output = new RecentLines();
  tapRelayedLines((stream, source, text) => output.push({ at: Date.now(), stream, source, text }));
  return new Dashboard({ ...options, output, onClose: () => tapRelayedLines(undefined) });
}

/** The supervisor's dashboard: see the module's comment. */
export class Dashboard {
  readonly #state = new DashboardState();
  readonly #options: DashboardOptions;
  readonly #now: () => number;
  #unsubscribe?: () => void;
  /** Hand it the `--metrics` port's requests (`handle`); close it when the supervisor stops. */
  readonly server: DashboardServer;

  /** A dashboard of the instance `options.status()` reports. */
  constructor(options: DashboardOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.server = new DashboardServer({
      hostname: options.hostname,
      snapshot: () => this.#snapshot(),
      idle: () => this.#stopListening(),
    });
  }

  /** A reload began. */
  reloadStarted(start: Omit<ReloadStart, "at">): void {
    this.#state.reloadStarted({ ...start, at: this.#now() });
  }

  /** A reload ended, done or aborted (or was refused before it began). */
  reloadEnded(end: Omit<ReloadEnd, "at">): void {
    this.#state.reloadEnded({ ...end, at: this.#now() });
  }

  /** Ends every page's stream; the supervisor is stopping. */
  close(): void {
    this.server.close();
    this.#stopListening();
    this.#options.onClose?.();
  }

  #snapshot() {
    if (!this.#unsubscribe) {
      // The first page after none: catch up from the buffer, then follow it.
      this.#state.clearLines();
      for (const line of this.#options.output.lines(MAX_LINES)) this.#line(line);
      this.#unsubscribe = this.#options.output.subscribe((line) => this.#line(line));
    }
    const now = this.#now();
    this.#state.observe(this.#options.status(), now);
    return this.#state.update(now);
  }

  #line(line: BufferedLine): void {
    this.#state.line(line.source, line.stream, line.text, line.at);
  }

  #stopListening(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
