/**
 * When a worker is ready: once it listens *and* its entry has finished
 * evaluating (bound is not started: code that binds, then throws, must never
 * count as ready), or, for an entry whose top level awaits its own server,
 * once it has listened for STARTED_AFTER_MS; with `--ready-path`, only once
 * a GET of that path, answered by this very worker, returns 2xx.
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */
import type { ChildMessage } from "./protocol.ts";

/**
 * How long a worker that listens, but whose entry has not finished (its top
 * level still awaits), must stay up before it counts as started. An app that
 * awaits its own server (Oak's `await app.listen()`, `await server.finished`)
 * never finishes its entry; one whose start-up fails (a database that is not
 * there, a config fetch that rejects) usually fails well within this.
 */
export const STARTED_AFTER_MS = 500;

/** What a GET of the ready path answered. */
export type Probe = (path: string) => Promise<{ status: number; body: string }>;

/** What readiness needs of the worker's settings. */
export interface ReadinessSettings {
  port?: number;
  ports?: number[];
  readyPath?: string;
  readyTimeoutMs?: number;
}

/**
 * How long before the supervisor's --ready-timeout a worker whose ready path
 * never answered 2xx gives up: its exit, with what the path answered, must
 * reach the supervisor before its own deadline ends the worker with less to
 * say ("was not ready within …").
 */
export const GIVE_UP_MARGIN_MS = 250;

/** Tracks the listeners a worker binds and says `listening` and `ready` to the supervisor. */
export class Readiness {
  readonly #settings: ReadinessSettings;
  /** When the supervisor started counting --ready-timeout (ms since the epoch). */
  readonly #startedAt: number;
  readonly #tell: (message: ChildMessage) => void;
  /** "app": the app says ready itself (mod.ts `deferReady`). */
  #mode: "listen" | "app" = "listen";
  #sent = false;
  /** The listener the ready path is asked of (the main port's, else the first), until ready. */
  #bound?: { addr: Deno.NetAddr; probe?: Probe };
  /** True once the entry and its top-level awaits have finished without an error. */
  #entryFinished = false;
  /** True once the entry is known to have failed (the worker is about to exit). */
  #entryFailed = false;
  /** True once the first listener has been bound for STARTED_AFTER_MS. */
  #listenedLongEnough = false;
  /** Every port this worker's pool listeners are bound to. */
  readonly #ports = new Set<number>();
  /** Whether each port is releasable, as last told (see `listening`). */
  readonly #releasable = new Map<number, boolean>();
  /** The ports to be bound before ready: the serving workers' (else the main port). */
  readonly #expected: number[];

  /** `startedAt`: when the supervisor sent the handshake (its --ready-timeout counts from then). */
  constructor(
    settings: ReadinessSettings,
    tell: (message: ChildMessage) => void,
    startedAt = Date.now(),
  ) {
    this.#settings = settings;
    this.#tell = tell;
    this.#startedAt = startedAt;
    this.#expected = settings.ports ?? (settings.port === undefined ? [] : [settings.port]);
  }

  /** Whether `port` is releasable, as last told. */
  releasable(port: number): boolean | undefined {
    return this.#releasable.get(port);
  }

  /**
   * A pool listener is bound. Every one is reported (the supervisor shares,
   * steers and checks each port). The worker is ready once its entry
   * finished and it listens on every expected port, or once its first
   * listener has been bound for STARTED_AFTER_MS (an entry that awaits its
   * own server; an app that no longer binds a port, or ignores --port: the
   * supervisor says so); with --ready-path, only once `probe` (the worker's
   * own handler, never the shared port) answers 2xx for it. A worker whose
   * path does not answer 2xx within --ready-timeout says why in one line and
   * exits 1: the supervisor treats it as a failed start (a reload is aborted).
   *
   * A port is releasable while only Deno.serve servers listen there: the
   * supervisor may stop such listeners from outside (pool_server.ts), never
   * an app's own or a node server's.
   */
  listening(addr: Deno.Addr, probe?: Probe, releasable = false): void {
    const netAddr = addr as Deno.NetAddr;
    const was = this.#releasable.get(netAddr.port);
    const now = (was ?? true) && releasable;
    if (!this.#ports.has(netAddr.port) || was !== now) {
      this.#ports.add(netAddr.port);
      this.#releasable.set(netAddr.port, now);
      this.#tell({
        t: "listening",
        port: netAddr.port,
        hostname: netAddr.hostname,
        releasable: now,
      });
    }
    if (this.#sent || this.#mode !== "listen") return;
    const first = this.#bound === undefined;
    if (
      first ||
      (netAddr.port === this.#settings.port && this.#bound!.addr.port !== this.#settings.port)
    ) {
      this.#bound = { addr: netAddr, probe };
    }
    if (first) {
      // An unref'd timer: it must not keep a worker alive whose servers are gone.
      Deno.unrefTimer(setTimeout(() => {
        this.#listenedLongEnough = true;
        this.#announce();
      }, STARTED_AFTER_MS));
    }
    this.#announce();
  }

  /** The entry (and its top-level awaits) finished without an error. */
  entryFinished(): void {
    this.#entryFinished = true;
    this.#announce();
  }

  /** The entry failed: this worker is never ready. */
  entryFailed(): void {
    this.#entryFailed = true;
  }

  /** The app says when it is ready (mod.ts `deferReady`). */
  deferToApp(): void {
    this.#mode = "app";
  }

  /** The app says it is ready (mod.ts `ready`): once. */
  appReady(): void {
    if (this.#sent) return;
    this.#sent = true;
    this.#tell({ t: "ready", via: "app" });
  }

  /** Says ready (after the --ready-path check), once, when the conditions above hold. */
  #announce(): void {
    if (!this.#bound || this.#sent || this.#entryFailed || this.#mode !== "listen") return;
    const started = this.#entryFinished && this.#expected.every((port) => this.#ports.has(port));
    if (!started && !this.#listenedLongEnough) return;
    this.#sent = true;
    const { addr, probe } = this.#bound;
    const ready = () =>
      this.#tell({ t: "ready", via: "listen", port: addr.port, hostname: addr.hostname });
    if (this.#settings.readyPath === undefined || probe === undefined) return ready();
    void this.#checkReadyPath(this.#settings.readyPath, probe).then(ready);
  }

  /**
   * Asks the ready path until it answers 2xx; gives up GIVE_UP_MARGIN_MS
   * before the supervisor's --ready-timeout, counted as the supervisor counts
   * it (from the handshake, not from this first check: where the start took
   * more than the margin, as it did under CI's load with a 1,500 ms timeout,
   * the supervisor's deadline ended the worker first, and its message never
   * said what the path answered). Always asks once.
   */
  async #checkReadyPath(path: string, probe: Probe): Promise<void> {
    const timeoutMs = this.#settings.readyTimeoutMs ?? 10_000;
    // Never later than a timeout from now: a clock set back since the handshake cannot hold it.
    const deadline = Math.min(this.#startedAt, Date.now()) + timeoutMs - GIVE_UP_MARGIN_MS;
    let last = "";
    while (true) {
      try {
        const { status, body } = await probe(path);
        if (status >= 200 && status < 300) return;
        last = `answered ${status}: ${JSON.stringify(body.slice(0, 200))}`;
      } catch (error) {
        last = `failed: ${(error as Error).message}`;
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        console.error(
          `hotreload: GET ${path} ${last}; not 2xx within --ready-timeout (${timeoutMs} ms), ` +
            "so this worker is not ready",
        );
        Deno.exit(1);
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, left)));
    }
  }
}
