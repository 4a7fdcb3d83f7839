/**
 * Runs inside every worker, before the app's entry (`deno run --preload`).
 *
 * It makes an unchanged app a good pool member:
 * - every TCP `Deno.serve` / `Deno.listen` / `Deno.listenTls`, and every
 *   `node:net` server (`node:http`, `node:https`: Express, Koa, Fastify, ...)
 *   gets `reusePort` (so N workers share one port) and the supervisor's port
 *   and host when the app names none;
 * - the worker is ready once it listens *and* its entry has finished
 *   evaluating (bound is not started: code that binds, then throws, must
 *   never count as ready), or, for an entry whose top level awaits its own
 *   server, once it has listened for STARTED_AFTER_MS;
 * - SIGTERM (or the supervisor going away) drains: listeners stop, every
 *   request that still reaches the worker on a connection it had is sent on
 *   to a serving worker (forward.ts) and answered with `Connection: close`,
 *   idle connections close once none has sent anything for the close window,
 *   in-flight requests finish, the app's onShutdown hooks run, then exit;
 * - a request another worker sent on (a hop, hop.ts) reaches the app as the
 *   client sent it, with the client's address;
 * - an `export default { fetch }` entry (the `deno serve` style) is served.
 *
 * Only relative, dependency-free imports: this file is resolved with the
 * user's deno.json, and runs with exactly the permissions the user granted,
 * which is why its settings come in the handshake on stdin, not from env vars.
 */
import {
  type Bridge,
  BRIDGE_KEY,
  COUNT_SIGNAL,
  LAST_CLOSE_WINDOW_MS,
  WORKER_MALLOC_TUNABLES,
  type WorkerSettings,
} from "./protocol.ts";
import { type NodeResponse, watchNodeServers } from "./node_servers.ts";
import {
  forwardNode,
  hopDestination,
  type NodeRequest,
  type NodeResponse as NodeForwardResponse,
} from "./forward.ts";
import { hopMarker } from "./hop.ts";
import { PoolServer } from "./pool_server.ts";
import { type Probe, Readiness } from "./readiness.ts";
import { poolHandler } from "./serve_handler.ts";
import { Service } from "./service.ts";
import { denoListen, denoListenTls, denoServe } from "./deno_originals.ts";
import { writableSlotVariables } from "./spare_warmup.ts";
// Last: child_runtime.ts reads the handshake as it is evaluated, and a warm spare blocks there
// until it is released. ES modules are evaluated in the order they are imported, so every module
// above is evaluated while the spare waits, not after its release: node:diagnostics_channel starts
// Deno's Node layer (10 ms here), and reading Deno.serve its HTTP layer (9 ms). Measured on a
// hello app: release to ready 33-38 ms before, 23-26 ms of it in this preload after the handshake.
import {
  childSettings,
  handshakeSentAt,
  heartbeat,
  runHooks,
  tell,
  whenOrphaned,
} from "./child_runtime.ts";

const settings = childSettings<WorkerSettings>();

// A released spare was started before it knew its slot: give the app the same
// variables a worker started for its slot has (when it may read them at all).
const slotValues = { HOTRELOAD_WORKER_ID: settings.id, HOTRELOAD_GENERATION: settings.generation };
for (const name of writableSlotVariables) Deno.env.set(name, String(slotValues[name]));
// GLIBC_TUNABLES was for glibc, read as the process started: the app and the
// processes it starts see the environment plain `deno run` gives them. The
// supervisor sets it only where this can remove it, or where nothing of the
// app could see it (supervisor/malloc_tunables.ts).
if (settings.dropMallocTunables) forgetMallocTunables();
const servers = new Set<PoolServer>();
/** Hops carry this marker; only workers of this instance know it (hop.ts). */
const marker = hopMarker(settings.hopKey);
const listeners = new Set<Deno.Listener>();
const shutdownHooks: Array<() => unknown> = [];
/** When the worker is ready (readiness.ts). */
const readiness = new Readiness(settings, tell, handshakeSentAt());
/** Whether it serves, and its count of requests (service.ts). */
const service = new Service(tell, settings.maxRequests, accepting);
// The supervisor takes a predecessor out of service without draining it yet with
// SIGUSR2 (held, service.ts), and SIGWINCH puts it back (never SIGUSR1: that opens
// Deno's inspector).
// SIGURG says the whole new generation serves (service.ts, handedOff).
Deno.addSignalListener("SIGUSR2", () => service.held = true);
Deno.addSignalListener("SIGURG", () => service.handedOff = true);
// SIGCONT: let one keep-alive connection go (its next answer says Connection: close), so that
// the client reconnects onto a less busy worker (supervisor/rebalance.ts). Harmless if it
// comes from elsewhere: one client reconnects.
Deno.addSignalListener("SIGCONT", () => service.shedOne());
Deno.addSignalListener("SIGWINCH", () => {
  service.held = false;
  service.handedOff = false;
});
// `hotreload status` asks for the count of requests now (protocol.ts).
Deno.addSignalListener(COUNT_SIGNAL, () => service.answerCount());

/** True while a listener of this worker accepts: a reload waits for none that does. */
function accepting(): boolean {
  return [...servers].some((server) => server.accepting) || nodeServers.listening();
}

function reportBindError(error: unknown, port?: number, hostname?: string): void {
  if (error instanceof Deno.errors.AddrInUse) {
    tell({ t: "bind-error", port, hostname, message: String((error as Error).message) });
  }
}

/** The address to bind when the app names none: `--host`, else the runtime's default. */
function withDefaultAddress<O extends Record<string, unknown>>(options: O): O {
  const address = options as Record<string, unknown>;
  if (address.port === undefined && settings.port !== undefined) address.port = settings.port;
  if (address.hostname === undefined && settings.host !== undefined) {
    address.hostname = settings.host;
  }
  return options;
}

/**
 * The error as if `wrapper` had not been there: its stack (and the code
 * frame Deno prints for an uncaught error) starts at the app's own line,
 * not inside this preload.
 */
function fromCaller(error: unknown, wrapper: (...args: never[]) => unknown): unknown {
  if (error instanceof Error) Error.captureStackTrace?.(error, wrapper);
  return error;
}

// ---- Deno.serve -------------------------------------------------------------

type ServeHandler = Deno.ServeHandler<Deno.NetAddr>;
type ServeOptions = Record<string, unknown> & { handler?: ServeHandler };

type AnyServe = (options: ServeOptions, handler: ServeHandler) => Deno.HttpServer;
type AnyListen = (options: Record<string, unknown>) => Deno.Listener;
const originalServe = denoServe as unknown as AnyServe;
const originalListen = denoListen as unknown as AnyListen;
const originalListenTls = denoListenTls as unknown as AnyListen;

/** What the pool servers say: accept failures and recoveries, a release that took effect. */
const serverEvents = {
  failed: (message: string) => console.error(`hotreload: ${message}`),
  listeningAgain(port: number) {
    console.error(`hotreload: listening on port ${port} again`);
    tell({ t: "listening", port, releasable: readiness.releasable(port) });
  },
  dead: (reason: string) => tell({ t: "recycle", reason }),
  released() {
    if (service.draining && !accepting()) service.reportDraining();
  },
};

function serve(...args: unknown[]): Deno.HttpServer {
  let options: ServeOptions;
  let handler: ServeHandler | undefined;
  if (typeof args[0] === "function") {
    options = {};
    handler = args[0] as ServeHandler;
  } else {
    options = { ...(args[0] as ServeOptions) };
    handler = (typeof args[1] === "function" ? args[1] : options.handler) as ServeHandler;
    delete options.handler;
  }
  // Unix-socket servers are not pool members: leave them exactly as written.
  if ("path" in options) {
    return (originalServe as unknown as (...a: unknown[]) => Deno.HttpServer).call(Deno, ...args);
  }
  options.reusePort = true;
  withDefaultAddress(options);
  let server: PoolServer;
  try {
    server = new PoolServer(
      originalServe,
      options,
      poolHandler(handler, { service, marker, addr: () => server.addr }),
      serverEvents,
    );
  } catch (error) {
    reportBindError(error, options.port as number | undefined, options.hostname as string);
    throw fromCaller(error, serve);
  }
  servers.add(server);
  server.finished.then(() => servers.delete(server), () => servers.delete(server));
  const port = (server.addr as Deno.NetAddr).port;
  const reportedBefore = readiness.releasable(port) !== undefined;
  readiness.listening(server.addr, async (path) => {
    // The app's own handler, called directly: the answer is this worker's.
    const addr = server.addr as Deno.NetAddr;
    const response = await handler!(
      new Request(
        `http://${
          addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname
        }:${addr.port}${path}`,
      ),
      {
        remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 0 },
        completed: Promise.resolve(),
      } as unknown as Deno.ServeHandlerInfo<Deno.NetAddr>,
    );
    return { status: response.status, body: await response.text() };
  }, true);
  // Opened after this worker was told to leave, on a port it reported before (readiness says a
  // port once): said again, so that the supervisor stops this listener too.
  if (service.draining && reportedBefore) {
    tell({ t: "listening", port, releasable: readiness.releasable(port) });
  }
  return server;
}

// ---- Deno.listen / Deno.listenTls -------------------------------------------

function wrapListen<O extends { transport?: string; port?: number; hostname?: string }>(
  original: (options: O) => Deno.Listener,
): (options: O) => Deno.Listener {
  const wrapped = (options: O) => {
    if (options.transport !== undefined && options.transport !== "tcp") {
      return original.call(Deno, options);
    }
    const tcpOptions = withDefaultAddress(
      { ...options, reusePort: true } as Record<string, unknown>,
    ) as O;
    let listener: Deno.Listener;
    try {
      listener = original.call(Deno, tcpOptions);
    } catch (error) {
      reportBindError(error, tcpOptions.port, tcpOptions.hostname);
      throw fromCaller(error, wrapped);
    }
    listeners.add(listener);
    readiness.listening(listener.addr);
    // Opened after this worker was told to leave (its entry was still starting): the drain
    // closed the app's listeners before this one existed, and no connection may reach it now.
    if (service.draining) listener.close();
    return listener;
  };
  return wrapped;
}

function replace(name: "serve" | "listen" | "listenTls", value: unknown): void {
  Object.defineProperty(Deno, name, {
    value,
    writable: true,
    configurable: true,
    enumerable: true,
  });
}

replace("listen", wrapListen(originalListen));
replace("listenTls", wrapListen(originalListenTls));
replace("serve", serve);

// ---- node:net servers (node:http, node:https, and every framework on them) -------------

/** node:http answers not yet sent: those that come once the worker left service ask for a reconnect. */
const openResponses = new Set<NodeResponse>();

/**
 * The answer lets its connection go, as node:http lets one go itself (a
 * request that asked to, `maxRequestsPerSocket`): its own `Connection:
 * close` in the place of `Connection: keep-alive`, without `Keep-Alive`,
 * and the connection closed after it. A header set here instead would come
 * first, in lower case, where plain `deno run` never writes it.
 */
function letGo(response: NodeResponse): void {
  if (!response.headersSent) response.shouldKeepAlive = false;
}

/** Out of service: every answer still to come says `Connection: close` (node; Deno.serve: closingIfLeaving). */
function closeOpenResponses(): void {
  for (const response of openResponses) letGo(response);
}

const nodeServers = watchNodeServers({
  port: settings.port,
  host: settings.host,
  onListening: (addr, probe?: Probe, releasable?: boolean) =>
    readiness.listening(addr, probe, releasable),
  onRequest(response) {
    service.count();
    service.begin();
    openResponses.add(response);
    response.once("close", () => {
      openResponses.delete(response);
      service.done();
    });
    // Once handing over (draining, or held and told so), or asked to let one connection go,
    // ask the client to reconnect elsewhere; an answer that closes anyway takes no shed.
    if (!response.headersSent && response.shouldKeepAlive && service.closeThis()) letGo(response);
  },
  onStream(stream) {
    service.count();
    service.begin();
    stream.once("close", service.done);
  },
  onBindError: (port, hostname, message) => tell({ t: "bind-error", port, hostname, message }),
  marker,
  outOfService: () => service.outOfService,
  forward(request, response, client, hops, address, app) {
    service.lastRequestAt = Date.now();
    const to = hopDestination(address);
    if (!to) return false;
    service.begin();
    service.relaying++;
    const done = () => {
      service.relayDone();
      service.done();
    };
    const taken = forwardNode(
      request as NodeRequest,
      response as NodeForwardResponse,
      client,
      { to, marker, hops, close: () => service.outOfService, done },
      () => {
        done();
        app();
      },
    );
    if (!taken) done();
    return taken;
  },
});

// ---- Draining -------------------------------------------------------------------

/**
 * Leaves service and exits. `last`: the instance stops for good (SIGINT from
 * the supervisor): nobody takes its clients over, so idle connections close
 * after at most LAST_CLOSE_WINDOW_MS instead of the whole close window.
 */
async function drain(last = false): Promise<void> {
  if (last) {
    closeWindowMs = Math.min(closeWindowMs, LAST_CLOSE_WINDOW_MS);
    // Already draining for a reload: its window is cut short now, not when it would have ended.
    wakeCloseWindow();
  }
  if (service.draining) return;
  service.draining = true;
  service.lastRequestAt = Date.now();
  orphans.draining();
  // Deno's servers keep the process alive only while their listeners accept:
  // from the release on, this keeps it alive for the connections they still serve.
  const alive = setInterval(() => {}, 60_000);
  // The app learns at once, so a stream can send its last event and end cleanly.
  drainController.abort();
  closeOpenResponses();
  // Stop accepting at once: the kernel gives new connections to the other
  // workers (and, steered or with tcp_migrate_req=1, moves the queued ones),
  // while every connection this worker has stays open. The app's own
  // listeners and node servers close their listener here; Deno.serve
  // servers' listeners were stopped from outside by the supervisor just
  // before it told this worker to drain (pool_server.ts).
  for (const listener of listeners) {
    try {
      listener.close();
    } catch { /* already closed by the app */ }
  }
  nodeServers.stopListening();
  service.reportDraining();
  // Closing an idle keep-alive connection races with a client sending its
  // next request on it (that request is lost). So the connections stay open:
  // each next request is sent on and answered with `Connection: close`, which
  // moves busy clients on at once; only once no request has come for the
  // close window are the idle ones closed (clients that pool connections for
  // less than that have closed theirs by then).
  await closeWindow();
  // Idle connections close now; open requests finish.
  const closing = Promise.allSettled([
    ...[...servers].map((server) => server.shutdown()),
    nodeServers.closeAll(),
  ]);
  service.reportDraining();
  await closing;
  await service.noneOpen();
  clearInterval(alive);
  await runHooks(shutdownHooks);
  orphans.exit();
}

/**
 * Resolves once no request has reached this worker for the close window, or
 * at the latest half of --grace after the close window (a worker whose
 * listener could not be released keeps getting new connections; the
 * supervisor's grace counts from the end of the window).
 */
async function closeWindow(): Promise<void> {
  if (closeWindowMs <= 0 || servers.size + nodeServers.count() === 0) return;
  const until = Date.now() + closeWindowMs + settings.graceMs / 2;
  while (true) {
    const now = Date.now();
    const quietAt = Math.min(service.lastRequestAt + closeWindowMs, until);
    if (now >= quietAt) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, quietAt - now);
      wakeCloseWindow = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

let closeWindowMs = settings.closeWindowMs;
/** Ends the close window's current wait early, so that it looks at the window again. */
let wakeCloseWindow = () => {};
Deno.addSignalListener("SIGTERM", () => void drain());
Deno.addSignalListener("SIGINT", () => void drain(true));
// An orphan nobody adopted drains for good: no successor takes its clients over.
const orphans = whenOrphaned(
  settings.orphanGraceMs,
  () => void drain(true),
  settings.orphanServeMs,
);

/** Serves an `export default { fetch }` entry that started no server of its own. */
function serveDefaultExport(entry: Record<string, unknown>): void {
  if (servers.size > 0 || listeners.size > 0 || nodeServers.count() > 0) return;
  const app = entry.default as { fetch?: ServeHandler } | undefined;
  if (typeof app?.fetch === "function") {
    serve((request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) =>
      app.fetch!(request, info)
    );
  }
}

// No stdin reader here: a pending read would keep a worker alive after its
// servers are gone. SIGTERM drains, and the parent watch notices a dead supervisor.
globalThis.addEventListener("load", () => {
  // `load` fires even when the entry threw (the error is reported a moment
  // later): importing the entry again settles with its real outcome, since a
  // module that failed to evaluate keeps its error.
  import(Deno.mainModule).then(
    (entry) => {
      readiness.entryFinished();
      // A failure to serve is an uncaught error: Deno reports it and the worker exits 1.
      serveDefaultExport(entry);
    },
    () => readiness.entryFailed(), // the entry's own error, which Deno reports (once)
  );
});

// ---- Bridge for mod.ts -----------------------------------------------------------

const drainController = new AbortController();
if (settings.heartbeatMs) heartbeat(settings.heartbeatMs);

const bridge: Bridge = {
  role: "worker",
  info: {
    id: settings.id,
    generation: settings.generation,
    workers: settings.workers,
    port: settings.port,
  },
  ready: () => readiness.appReady(),
  deferReady: () => readiness.deferToApp(),
  onShutdown(hook) {
    shutdownHooks.push(hook);
  },
  isDraining: () => service.draining,
  drainSignal: () => drainController.signal,
};
(globalThis as Record<symbol, unknown>)[BRIDGE_KEY] = bridge;

/** Removes hotreload's GLIBC_TUNABLES, when it is still there and the app's permissions allow it. */
function forgetMallocTunables(): void {
  const variable = "GLIBC_TUNABLES";
  if (Deno.permissions.querySync({ name: "env", variable }).state !== "granted") return;
  if (Deno.env.get(variable) === WORKER_MALLOC_TUNABLES) Deno.env.delete(variable);
}
