/**
 * `Deno.serve` for a pool member, on a listener the worker owns.
 *
 * Deno's own server accepts inside Rust, and the only way to make it stop
 * accepting is `shutdown()`, which also drops every connection it accepted
 * but had not read a request from yet (measured: a client that connected
 * just before gets an empty reply), and an accept loop that fails (a
 * listener shut down from outside) does the same. So a draining worker
 * without steering lost the new connections that reached it in its last
 * moments. Here the worker accepts itself and serves each connection with
 * Deno's per-connection server (`serveHttpOnConnection`, the one
 * `Deno.serveHttp` became): the listener can close the moment the worker
 * drains (the kernel then gives new connections to the other workers, and
 * with `tcp_migrate_req=1` moves the queued ones too), while every
 * connection it already has is answered through the close window and shut
 * down gracefully only after it.
 *
 * Keep-alive and new-connection throughput stay as with Deno's own
 * (bench/throughput.ts). Where this Deno has no per-connection server, or
 * the app passes an option only Deno's own understands, the worker uses
 * Deno's own server as before.
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */

type ServeHandler = Deno.ServeHandler<Deno.NetAddr>;
type ErrorHandler = (error: unknown) => Response | Promise<Response>;

/** Deno's per-connection server (internal, stable in shape since Deno 1.35). */
type ServeConnection = (
  connection: Deno.Conn,
  signal: AbortSignal | undefined,
  handler: ServeHandler,
  onError: ErrorHandler,
  onListen: (scheme: string) => void,
) => Deno.HttpServer;

interface DenoInternals {
  serveHttpOnConnection?: ServeConnection;
  log?: (level: string, ...args: unknown[]) => void;
}

const internals: DenoInternals = (() => {
  const deno = Deno as unknown as Record<symbol, unknown> & { internal?: symbol };
  const value = deno.internal === undefined ? undefined : deno[deno.internal];
  return (value ?? {}) as DenoInternals;
})();

/** The options this server understands; with any other, Deno's own serves. */
const KNOWN_OPTIONS = new Set([
  "port",
  "hostname",
  "reusePort",
  "onListen",
  "onError",
  "signal",
  "cert",
  "key",
]);

/** The `Deno.serve` options a pool server takes. */
export interface PoolServeOptions {
  port: number;
  hostname: string;
  cert?: string;
  key?: string;
  onListen?: (addr: Deno.NetAddr) => void;
  onError?: ErrorHandler;
  signal?: AbortSignal;
}

/** True when a pool server can serve these options (else use Deno's own). */
export function canServe(options: Record<string, unknown>): boolean {
  return internals.serveHttpOnConnection !== undefined &&
    Object.keys(options).every((key) => KNOWN_OPTIONS.has(key) || options[key] === undefined);
}

const noop = () => {};

/** Deno's default `onError`: log the error, answer 500. */
function defaultOnError(error: unknown): Response {
  if (internals.log) internals.log("error", error);
  else console.error(error);
  return new Response("Internal Server Error", { status: 500 });
}

/** Deno's default `onListen` line. */
function sayListening(addr: Deno.NetAddr, scheme: string): void {
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  const wildcard = addr.hostname === "0.0.0.0" || addr.hostname === "::";
  const message = `Listening on ${scheme}${host}:${addr.port}/` +
    (wildcard ? ` (${scheme}localhost:${addr.port}/)` : "");
  if (internals.log) internals.log("info", message);
  else console.error(message);
}

/**
 * Binds (`listen` is the runtime's own `Deno.listen` or `Deno.listenTls`,
 * called with `reusePort`) and serves; throws what binding throws.
 */
export function poolServe(
  options: PoolServeOptions,
  handler: ServeHandler,
  listen: (options: Record<string, unknown>) => Deno.Listener,
): PoolServer {
  const tls = options.cert !== undefined && options.key !== undefined;
  const listener = listen({
    hostname: options.hostname,
    port: options.port,
    reusePort: true,
    ...(tls ? { cert: options.cert, key: options.key, alpnProtocols: ["h2", "http/1.1"] } : {}),
  });
  const server = new PoolServer(listener, handler, options.onError ?? defaultOnError);
  const addr = server.addr;
  if (options.onListen) options.onListen(addr);
  else sayListening(addr, tls ? "https://" : "http://");
  const signal = options.signal;
  if (signal?.aborted) void server.shutdown();
  else signal?.addEventListener("abort", () => void server.shutdown(), { once: true });
  return server;
}

/** A server whose listener can close without closing the connections it accepted. */
export class PoolServer implements Deno.HttpServer<Deno.NetAddr> {
  readonly addr: Deno.NetAddr;
  /** Settles once the server was shut down and every connection ended (rejects: accept failed). */
  readonly finished: Promise<void>;
  readonly #listener: Deno.Listener;
  readonly #connections = new Set<Deno.HttpServer>();
  readonly #acceptLoop: Promise<void>;
  readonly #shutDown = Promise.withResolvers<void>();
  #accepting = true;
  #referenced = true;
  #closing?: Promise<void>;

  constructor(listener: Deno.Listener, handler: ServeHandler, onError: ErrorHandler) {
    this.#listener = listener;
    this.addr = listener.addr as Deno.NetAddr;
    this.#acceptLoop = this.#accept(handler, onError);
    this.finished = Promise.all([this.#acceptLoop, this.#shutDown.promise]).then(noop);
  }

  async #accept(handler: ServeHandler, onError: ErrorHandler): Promise<void> {
    const serveConnection = internals.serveHttpOnConnection!;
    while (true) {
      let connection: Deno.Conn;
      try {
        connection = await this.#listener.accept();
      } catch (error) {
        if (error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted) {
          return; // closed: stopAccepting()
        }
        // As with Deno's own server: a failed accept ends serving.
        this.#accepting = false;
        throw new Deno.errors.Http((error as Error).message);
      }
      let server: Deno.HttpServer;
      try {
        server = serveConnection(connection, undefined, handler, onError, noop);
      } catch {
        try {
          connection.close();
        } catch { /* already closed */ }
        continue;
      }
      if (!this.#referenced) server.unref();
      this.#connections.add(server);
      const ended = () => this.#connections.delete(server);
      // A client that resets its connection is no error of the server's (as with Deno's own).
      server.finished.then(ended, ended);
    }
  }

  /** Closes the listener: new connections go to the other workers; the ones here stay. */
  stopAccepting(): void {
    if (!this.#accepting) return;
    this.#accepting = false;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
  }

  /** Stops accepting, then shuts every connection down gracefully (open requests finish). */
  shutdown(): Promise<void> {
    this.#closing ??= (async () => {
      this.stopAccepting();
      await this.#acceptLoop.catch(noop);
      await Promise.allSettled([...this.#connections].map((server) => server.shutdown()));
      this.#shutDown.resolve();
    })();
    return this.#closing;
  }

  ref(): void {
    this.#referenced = true;
    this.#listener.ref();
    for (const server of this.#connections) server.ref();
  }

  unref(): void {
    this.#referenced = false;
    this.#listener.unref();
    for (const server of this.#connections) server.unref();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }
}
