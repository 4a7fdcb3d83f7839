/**
 * `Deno.serve` for a pool member: Deno's own server, exactly as `deno run`
 * serves the app (same request path, same bytes, WebSockets, client
 * address, speed), with two things added around it.
 *
 * - **Its listener can be released.** Deno's server accepts inside Rust and
 *   has no way to stop accepting but `shutdown()`, which also closes every
 *   idle keep-alive connection at once, racing the request a client may be
 *   sending on it. A draining worker instead asks the supervisor to stop its
 *   listener from outside (src/handover/release.ts); Deno's accept loop then
 *   fails with EINVAL, which is expected here and ends nothing else: the
 *   connections it accepted are served on by Deno (their tasks do not depend
 *   on the accept loop), and `shutdown()` closes them later. The process is
 *   kept alive meanwhile by the caller (no op of Deno's is pending any more).
 * - **An accept that fails does not end serving.** Deno's accept loop ends
 *   at the first error (EMFILE: out of file descriptors), and the port is
 *   then closed for good. Here the connections it has stay served, and the
 *   worker listens again after ACCEPT_RETRY_MS (nginx pauses accepting for
 *   500 ms), and again until it can; after DEAD_AFTER_MS without a listener
 *   it asks to be replaced.
 *
 * The app's `finished` settles once the server was shut down (by the app,
 * its signal, or a drain) and every connection ended; an accept error the
 * server survives never rejects it.
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */

type ServeHandler = Deno.ServeHandler<Deno.NetAddr>;
type Serve = (options: Record<string, unknown>, handler: ServeHandler) => Deno.HttpServer;

/** How long a listener whose accept failed waits before it listens again. */
export const ACCEPT_RETRY_MS = 500;
/** Without a listener for this long, the worker asks for a replacement. */
export const DEAD_AFTER_MS = 10_000;

/** What a pool server tells its worker. */
export interface PoolServerEvents {
  /** Accepting failed (`listening again` says when it retries), or listening again failed. */
  failed(message: string): void;
  /** Listening again on `port` after a failure. */
  listeningAgain(port: number): void;
  /** No listener for DEAD_AFTER_MS: the worker should be replaced. */
  dead(reason: string): void;
  /** The listener was stopped from outside: the supervisor took the worker out of service. */
  released(): void;
}

/** True for the error Deno's accept loop ends with when its listener was shut down from outside. */
function isShutDown(error: unknown): boolean {
  return /\(os error 22\)|invalid argument/i.test(String((error as Error)?.message ?? error));
}

const noop = () => {};

/** A `Deno.serve` server of the pool: see the module text. */
export class PoolServer implements Deno.HttpServer<Deno.NetAddr> {
  readonly addr: Deno.NetAddr;
  readonly finished: Promise<void>;
  readonly #serve: Serve;
  readonly #options: Record<string, unknown>;
  readonly #handler: ServeHandler;
  readonly #events: PoolServerEvents;
  /** Every server of ours still holding connections (one listens; failed ones do not). */
  readonly #servers = new Set<Deno.HttpServer>();
  readonly #ended = Promise.withResolvers<void>();
  /** The server whose listener accepts now, if any. */
  #listening?: Deno.HttpServer;
  #released = false;
  #closing?: Promise<void>;
  #retry?: ReturnType<typeof setTimeout>;
  /** Keeps the process alive while connections are served without a listener. */
  #alive?: ReturnType<typeof setInterval>;
  #failingSince?: number;
  #referenced = true;

  /** Binds and serves (throws what binding throws): `serve` is the runtime's own `Deno.serve`. */
  constructor(
    serve: Serve,
    options: Record<string, unknown>,
    handler: ServeHandler,
    events: PoolServerEvents,
  ) {
    this.#serve = serve;
    this.#options = options;
    this.#handler = handler;
    this.#events = events;
    const server = serve.call(Deno, options, handler);
    this.addr = server.addr as Deno.NetAddr;
    this.#adopt(server);
    this.finished = this.#ended.promise;
    const signal = options.signal as AbortSignal | undefined;
    // Deno's own servers abort on it (forcefully); we stop listening again too.
    signal?.addEventListener("abort", () => void this.#close(false), { once: true });
  }

  /** True while a listener of ours accepts. */
  get accepting(): boolean {
    return this.#listening !== undefined;
  }

  #adopt(server: Deno.HttpServer): void {
    this.#servers.add(server);
    this.#listening = server;
    if (!this.#referenced) server.unref();
    server.finished.then(
      () => this.#gone(server),
      (error) => this.#acceptFailed(server, error),
    );
  }

  /** A server shut down and every connection it had ended. */
  #gone(server: Deno.HttpServer): void {
    this.#servers.delete(server);
    if (this.#listening === server) this.#listening = undefined;
    if (this.#servers.size === 0 && (this.#closing || this.#retry === undefined)) {
      this.#ended.resolve();
    }
  }

  /** Its accept loop ended with an error: its connections are still being served. */
  #acceptFailed(server: Deno.HttpServer, error: unknown): void {
    if (this.#listening === server) this.#listening = undefined;
    if (this.#closing) return;
    // No op of Deno's keeps the process alive now, but its connections are served on.
    this.#alive ??= setInterval(noop, 60_000);
    if (!this.#referenced) Deno.unrefTimer(this.#alive);
    // Only the supervisor stops a listener from outside (the worker is leaving service).
    if (isShutDown(error)) {
      this.#released = true;
      return this.#events.released();
    }
    this.#failingSince ??= Date.now();
    this.#events.failed(
      `accepting on port ${this.addr.port} failed (${(error as Error).message}); ` +
        `listening again in ${ACCEPT_RETRY_MS} ms`,
    );
    this.#scheduleRetry();
  }

  #scheduleRetry(): void {
    if (this.#retry !== undefined || this.#closing || this.#released) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#listenAgain();
    }, ACCEPT_RETRY_MS);
  }

  #listenAgain(): void {
    if (this.#closing || this.#released || this.#listening) return;
    try {
      this.#adopt(
        this.#serve.call(
          Deno,
          { ...this.#options, port: this.addr.port, onListen: noop },
          this.#handler,
        ),
      );
      this.#failingSince = undefined;
      this.#events.listeningAgain(this.addr.port);
    } catch (error) {
      const since = Date.now() - (this.#failingSince ?? Date.now());
      if (since >= DEAD_AFTER_MS) {
        this.#events.dead(
          `no listener on port ${this.addr.port} for ${Math.round(since / 1000)} s ` +
            `(${(error as Error).message})`,
        );
      }
      this.#scheduleRetry();
    }
  }

  /** Stops listening, closes idle connections, lets open requests finish (Deno's graceful shutdown). */
  shutdown(): Promise<void> {
    return this.#close(true);
  }

  #close(graceful: boolean): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#retry);
      this.#retry = undefined;
      if (graceful) {
        await Promise.allSettled([...this.#servers].map((server) => server.shutdown()));
      } else {
        await Promise.allSettled([...this.#servers].map((server) => server.finished));
      }
      this.#servers.clear();
      this.#listening = undefined;
      clearInterval(this.#alive);
      this.#ended.resolve();
    })();
    return this.#closing;
  }

  ref(): void {
    this.#referenced = true;
    if (this.#alive !== undefined) Deno.refTimer(this.#alive);
    for (const server of this.#servers) server.ref();
  }

  unref(): void {
    this.#referenced = false;
    if (this.#alive !== undefined) Deno.unrefTimer(this.#alive);
    for (const server of this.#servers) server.unref();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
