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
import { type Bridge, BRIDGE_KEY, LAST_CLOSE_WINDOW_MS, type WorkerSettings } from "./protocol.ts";
import { childSettings, heartbeat, runHooks, tell, whenOrphaned } from "./child_runtime.ts";
import { watchNodeServers } from "./node_servers.ts";
import {
  forwardNode,
  forwardRequest,
  hopDestination,
  type NodeRequest,
  type NodeResponse as NodeForwardResponse,
} from "./forward.ts";
import { type ClientAddress, hopMarker, parseHop } from "./hop.ts";
import { PoolServer } from "./pool_server.ts";

const settings = childSettings<WorkerSettings>();

// A released spare was started before it knew its slot: give the app the same
// variables a worker started for its slot has (when it may read them at all).
for (
  const [name, value] of [
    ["HOTRELOAD_WORKER_ID", String(settings.id)],
    ["HOTRELOAD_GENERATION", String(settings.generation)],
  ]
) {
  try {
    if (Deno.permissions.querySync({ name: "env", variable: name }).state === "granted") {
      Deno.env.set(name, value);
    }
  } catch { /* no env permission: the app cannot read it either */ }
}
const servers = new Set<PoolServer>();
/** Hops carry this marker; only workers of this instance know it (hop.ts). */
const marker = hopMarker(settings.hopKey);
const listeners = new Set<Deno.Listener>();
const shutdownHooks: Array<() => unknown> = [];
let readyMode: "listen" | "app" = "listen";
let readySent = false;
let draining = false;
/**
 * Out of service, not draining yet: a predecessor held until the whole new
 * generation serves (steered, through the settle window too: it may yet be
 * put back). Like a draining worker it sends every request on to the
 * serving workers, so no client gets old code once new code serves; unlike
 * one it does not ask its clients to reconnect yet: their requests, each
 * sent on over a new connection, spread over every serving worker, and the
 * clients reconnect once all of them serve, spreading too. The supervisor
 * says so with SIGUSR2, and SIGWINCH puts it back in service (never SIGUSR1:
 * that opens Deno's inspector).
 */
let held = false;
Deno.addSignalListener("SIGUSR2", () => held = true);
Deno.addSignalListener("SIGWINCH", () => held = false);
/** True while requests should go to the serving workers: draining or held. */
const outOfService = () => draining || held;

/**
 * How long a worker that listens, but whose entry has not finished (its top
 * level still awaits), must stay up before it counts as started. An app that
 * awaits its own server (Oak's `await app.listen()`, `await server.finished`)
 * never finishes its entry; one whose start-up fails (a database that is not
 * there, a config fetch that rejects) usually fails well within this.
 */
const STARTED_AFTER_MS = 500;

/** What a GET of the ready path answered. */
type Probe = (path: string) => Promise<{ status: number; body: string }>;

/** The listener the ready path is asked of (the main port's, else the first), until ready. */
let bound: { addr: Deno.NetAddr; probe?: Probe } | undefined;
/** True once the entry and its top-level awaits have finished without an error. */
let entryFinished = false;
/** True once the entry is known to have failed (the worker is about to exit). */
let entryFailed = false;
/** True once the first listener has been bound for STARTED_AFTER_MS. */
let listenedLongEnough = false;
/** Every port this worker's pool listeners are bound to. */
const ports = new Set<number>();
/** Whether each port is releasable, as last told (see announceListening). */
const releasablePorts = new Map<number, boolean>();
/** The ports to be bound before ready: the serving workers' (else the main port). */
const expectedPorts = settings.ports ?? (settings.port === undefined ? [] : [settings.port]);

/**
 * Every pool listener is reported (the supervisor shares, steers and checks
 * each port). The worker is ready once its entry finished and it listens on
 * every expected port, or once its first listener has been bound for
 * STARTED_AFTER_MS (an entry that awaits its own server; an app that no
 * longer binds a port, or ignores --port: the supervisor says so); with
 * --ready-path, only once a GET of that path, answered by this very worker
 * (`probe` calls its own handler, never the shared port), returns 2xx. A
 * worker whose path does not answer 2xx within --ready-timeout says why in
 * one line and exits 1: the supervisor treats it as a failed start (a
 * reload is aborted).
 */
function announceListening(addr: Deno.Addr, probe?: Probe, releasable = false): void {
  const netAddr = addr as Deno.NetAddr;
  // A port is releasable while only Deno.serve servers listen there: the
  // supervisor may stop such listeners from outside (pool_server.ts), never
  // an app's own or a node server's.
  const wasReleasable = releasablePorts.get(netAddr.port);
  const nowReleasable = (wasReleasable ?? true) && releasable;
  if (!ports.has(netAddr.port) || wasReleasable !== nowReleasable) {
    ports.add(netAddr.port);
    releasablePorts.set(netAddr.port, nowReleasable);
    tell({
      t: "listening",
      port: netAddr.port,
      hostname: netAddr.hostname,
      releasable: nowReleasable,
    });
  }
  if (readySent || readyMode !== "listen") return;
  const first = bound === undefined;
  if (first || (netAddr.port === settings.port && bound!.addr.port !== settings.port)) {
    bound = { addr: netAddr, probe };
  }
  if (first) {
    // An unref'd timer: it must not keep a worker alive whose servers are gone.
    Deno.unrefTimer(setTimeout(() => {
      listenedLongEnough = true;
      announceReady();
    }, STARTED_AFTER_MS));
  }
  announceReady();
}

/** Says ready (after the --ready-path check), once, when the conditions above hold. */
function announceReady(): void {
  if (!bound || readySent || entryFailed || readyMode !== "listen") return;
  const started = entryFinished && expectedPorts.every((port) => ports.has(port));
  if (!started && !listenedLongEnough) return;
  readySent = true;
  const { addr, probe } = bound;
  const ready = () => tell({ t: "ready", via: "listen", port: addr.port, hostname: addr.hostname });
  if (settings.readyPath === undefined || probe === undefined) return ready();
  void checkReadyPath(settings.readyPath, probe).then(ready);
}

async function checkReadyPath(path: string, probe: Probe): Promise<void> {
  const patienceMs = Math.max(100, (settings.readyTimeoutMs ?? 10_000) - 250);
  const deadline = Date.now() + patienceMs;
  let last = "";
  while (true) {
    try {
      const { status, body } = await probe(path);
      if (status >= 200 && status < 300) return;
      last = `answered ${status}: ${JSON.stringify(body.slice(0, 200))}`;
    } catch (error) {
      last = `failed: ${(error as Error).message}`;
    }
    if (Date.now() >= deadline) {
      console.error(
        `hotreload: GET ${path} ${last}; not 2xx within ${patienceMs} ms, so this worker is not ready`,
      );
      Deno.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
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
const originalServe = Deno.serve as unknown as AnyServe;
const originalListen = Deno.listen as unknown as AnyListen;
const originalListenTls = Deno.listenTls as unknown as AnyListen;

/** The answer, with `Connection: close` once the worker is out of service. */
function closingIfLeaving(response: Response): Response {
  return draining ? withConnectionClose(response) : response;
}

/** A draining worker asks clients to reconnect elsewhere instead of reusing this connection. */
function withConnectionClose(response: Response): Response {
  if (response.status === 101) return response; // an upgrade: the socket is the app's now
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("connection", "close");
    return copy;
  }
}

let served = 0;
let reported = 0;

function countRequest(): void {
  served++;
  if (served === settings.maxRequests) {
    // Ask for a replacement; we keep serving until it is ready and we are drained.
    tell({ t: "recycle", reason: `served ${served} requests (--max-requests)` });
  }
}

// The count for `hotreload status`: at most one line every 50 ms (a status asked right after
// a request counts it), and only when it changed; while draining, how many requests are open.
let reportedOpen = -1;
const requestReport = setInterval(() => {
  if (draining && open !== reportedOpen) reportDraining();
  if (served === reported) return;
  reported = served;
  tell({ t: "requests", served });
}, 50);
Deno.unrefTimer(requestReport);

function reportDraining(): void {
  reportedOpen = open;
  tell({ t: "draining", open, relaying: Math.min(relaying, open), accepting: accepting() });
}

/** Requests being answered (a stream counts until it ends), for `draining (2 open)`. */
let open = 0;
/** Of those, the ones sent on to a serving worker, whose answers are being relayed. */
let relaying = 0;
const relayDone = () => relaying--;
/** When a request last reached this worker while out of service (the close window counts from it). */
let lastRequestAt = 0;

/** True while a listener of this worker accepts: a reload waits for none that does. */
function accepting(): boolean {
  return [...servers].some((server) => server.accepting) || nodeServers.listening();
}
/** Called when no request is open any more. */
let whenNoneOpen: Array<() => void> = [];
const requestDone = () => {
  open--;
  if (open > 0) return;
  for (const resolve of whenNoneOpen) resolve();
  whenNoneOpen = [];
};

/** Resolves once no request is open (a node server's close does not wait for keep-alive ones). */
function noOpenRequests(): Promise<void> {
  return open <= 0 ? Promise.resolve() : new Promise((resolve) => whenNoneOpen.push(resolve));
}

/**
 * The app's handler as the pool calls it. In service, one check: a request
 * another worker sent on (its URL carries the marker) is unwrapped first;
 * every other goes to the app as Deno gave it. Out of service (draining, or
 * held), each request is sent on to a serving worker (handOn).
 */
function poolHandler(handler: ServeHandler, server: () => PoolServer): ServeHandler {
  return (request, info) => {
    open++;
    info.completed.then(requestDone, requestDone);
    if (!outOfService() && request.url.indexOf(marker) < 0) {
      countRequest();
      const response = handler(request, info);
      // An answer that comes once the worker has left service (a slow request that began
      // before) asks the client to reconnect too: Deno closes the connection after it, and a
      // client that sends its next request at once would lose it.
      return response instanceof Promise ? response.then(closingIfLeaving) : response;
    }
    return handOn(handler, request, info, server());
  };
}

/** A hop's request as the client sent it, and the client's address, for the app. */
function unwrapHop(
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
): { request: Request; info: Deno.ServeHandlerInfo<Deno.NetAddr>; hops: number } | undefined {
  const hop = parseHop(request.url, marker);
  if (!hop) return undefined;
  // Never `request.signal`: reading it makes Deno print a warning plain `deno run` would
  // not. The app's signal aborts when the client goes away before its answer was delivered.
  const gone = new AbortController();
  info.completed.catch(() => gone.abort());
  const init: RequestInit & { duplex?: "half" } = {
    method: request.method,
    headers: request.headers,
    signal: gone.signal,
  };
  if (request.body !== null) {
    init.body = request.body;
    init.duplex = "half";
  }
  const remoteAddr: Deno.NetAddr = { transport: "tcp", ...hop.client };
  return {
    request: new Request(hop.prefix + hop.target, init),
    info: { remoteAddr, completed: info.completed } as Deno.ServeHandlerInfo<Deno.NetAddr>,
    hops: hop.hops,
  };
}

/**
 * A hop for this worker, or any request while it is out of service: sent on
 * when it can be (new code answers it), else answered by the app here; out
 * of service, the answer says `Connection: close`.
 */
async function handOn(
  handler: ServeHandler,
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  server: PoolServer,
): Promise<Response> {
  let hops = 0;
  const hop = request.url.indexOf(marker) >= 0 ? unwrapHop(request, info) : undefined;
  if (hop) ({ request, info, hops } = hop);
  if (outOfService()) {
    lastRequestAt = Date.now();
    const to = server.addr.port > 0 ? hopDestination(server.addr) : undefined;
    if (to) {
      relaying++;
      const client: ClientAddress = info.remoteAddr;
      const answer = await forwardRequest(request, client, info.completed, {
        to,
        marker,
        hops: hops + 1,
        close: () => draining,
        done: relayDone,
      });
      if (answer) return answer;
    }
  }
  countRequest();
  const response = await handler(request, info);
  return draining ? withConnectionClose(response) : response;
}

/** What the pool servers say: accept failures and recoveries, a release that took effect. */
const serverEvents = {
  failed: (message: string) => console.error(`hotreload: ${message}`),
  listeningAgain(port: number) {
    console.error(`hotreload: listening on port ${port} again`);
    tell({ t: "listening", port, releasable: releasablePorts.get(port) });
  },
  dead: (reason: string) => tell({ t: "recycle", reason }),
  released() {
    if (draining && !accepting()) reportDraining();
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
      poolHandler(handler, () => server),
      serverEvents,
    );
  } catch (error) {
    reportBindError(error, options.port as number | undefined, options.hostname as string);
    throw fromCaller(error, serve);
  }
  servers.add(server);
  server.finished.then(() => servers.delete(server), () => servers.delete(server));
  announceListening(server.addr, async (path) => {
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
    announceListening(listener.addr);
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
const openResponses = new Set<
  { headersSent: boolean; setHeader(name: string, value: string): void }
>();

/** Out of service: every answer still to come says `Connection: close` (node; Deno.serve: closingIfLeaving). */
function closeOpenResponses(): void {
  for (const response of openResponses) {
    if (!response.headersSent) response.setHeader("connection", "close");
  }
}

const nodeServers = watchNodeServers({
  port: settings.port,
  host: settings.host,
  onListening: announceListening,
  onRequest(response) {
    countRequest();
    open++;
    openResponses.add(response);
    response.once("close", () => {
      openResponses.delete(response);
      requestDone();
    });
    // Once draining, ask the client to reconnect elsewhere.
    if (draining && !response.headersSent) response.setHeader("connection", "close");
  },
  onStream(stream) {
    countRequest();
    open++;
    stream.once("close", requestDone);
  },
  onBindError: (port, hostname, message) => tell({ t: "bind-error", port, hostname, message }),
  marker,
  outOfService,
  forward(request, response, client, hops, address, app) {
    lastRequestAt = Date.now();
    const to = hopDestination(address);
    if (!to) return false;
    open++;
    relaying++;
    const done = () => {
      relayDone();
      requestDone();
    };
    const taken = forwardNode(
      request as NodeRequest,
      response as NodeForwardResponse,
      client,
      { to, marker, hops, close: () => draining, done },
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
  if (last) closeWindowMs = Math.min(closeWindowMs, LAST_CLOSE_WINDOW_MS);
  if (draining) return;
  draining = true;
  lastRequestAt = Date.now();
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
  reportDraining();
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
  reportDraining();
  await closing;
  await noOpenRequests();
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
    const quietAt = Math.min(lastRequestAt + closeWindowMs, until);
    if (now >= quietAt) return;
    await new Promise((resolve) => setTimeout(resolve, quietAt - now));
  }
}

let closeWindowMs = settings.closeWindowMs;
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
      entryFinished = true;
      announceReady();
      // A failure to serve is an uncaught error: Deno reports it and the worker exits 1.
      serveDefaultExport(entry);
    },
    () => entryFailed = true, // the entry's own error, which Deno reports (once)
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
  ready() {
    if (readySent) return;
    readySent = true;
    tell({ t: "ready", via: "app" });
  },
  deferReady() {
    readyMode = "app";
  },
  onShutdown(hook) {
    shutdownHooks.push(hook);
  },
  isDraining: () => draining,
  drainSignal: () => drainController.signal,
};
(globalThis as Record<symbol, unknown>)[BRIDGE_KEY] = bridge;
