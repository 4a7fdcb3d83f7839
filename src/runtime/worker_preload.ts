/**
 * Runs inside every worker, before the app's entry (`deno run --preload`).
 *
 * It makes an unchanged app a good pool member:
 * - every TCP `Deno.serve` / `Deno.listen` / `Deno.listenTls`, and every
 *   `node:net` server (`node:http`, `node:https`: Express, Koa, Fastify, ...)
 *   gets `reusePort` (so N workers share one port) and the supervisor's port
 *   and host when the app names none;
 * - the first bound listener tells the supervisor the worker is ready;
 * - SIGTERM (or the supervisor going away) drains: listeners close, servers
 *   finish their in-flight requests, the app's onShutdown hooks run, then exit;
 * - an `export default { fetch }` entry (the `deno serve` style) is served.
 *
 * Only relative, dependency-free imports: this file is resolved with the
 * user's deno.json, and runs with exactly the permissions the user granted,
 * which is why its settings come in the handshake on stdin, not from env vars.
 */
import diagnostics from "node:diagnostics_channel";
import { type Bridge, BRIDGE_KEY, type WorkerSettings } from "./protocol.ts";
import { childSettings, exitOrphaned, runHooks, tell, watchParent } from "./child_runtime.ts";

const settings = childSettings<WorkerSettings>();
const servers = new Set<Deno.HttpServer>();
const listeners = new Set<Deno.Listener>();
const nodeServers = new Set<NodeServer>();
const shutdownHooks: Array<() => unknown> = [];
let readyMode: "listen" | "app" = "listen";
let readySent = false;
let draining = false;
let orphaned = false;

function announceListening(addr: Deno.Addr): void {
  if (readySent || readyMode !== "listen") return;
  readySent = true;
  const net = addr as Deno.NetAddr;
  tell({ t: "ready", via: "listen", port: net.port, hostname: net.hostname });
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

// ---- Deno.serve -------------------------------------------------------------

type ServeHandler = Deno.ServeHandler<Deno.NetAddr>;
type ServeOptions = Record<string, unknown> & { handler?: ServeHandler };

type AnyServe = (options: ServeOptions, handler: ServeHandler) => Deno.HttpServer;
const originalServe = Deno.serve as unknown as AnyServe;

/** A draining worker asks clients to reconnect elsewhere instead of reusing this connection. */
function withConnectionClose(response: Response): Response {
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

// The count for `hotreload status`: at most one line a second, and only when it changed.
const requestReport = setInterval(() => {
  if (served === reported) return;
  reported = served;
  tell({ t: "requests", served });
}, 1000);
Deno.unrefTimer(requestReport);

function drainAwareHandler(handler: ServeHandler): ServeHandler {
  return (request, info) => {
    countRequest();
    const response = handler(request, info);
    if (!draining) return response;
    return response instanceof Response
      ? withConnectionClose(response)
      : response.then(withConnectionClose);
  };
}

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
  let server: Deno.HttpServer;
  try {
    server = originalServe.call(Deno, options, drainAwareHandler(handler));
  } catch (error) {
    reportBindError(error, options.port as number | undefined, options.hostname as string);
    throw error;
  }
  servers.add(server);
  server.finished.then(() => servers.delete(server), () => servers.delete(server));
  announceListening(server.addr);
  return server;
}

// ---- Deno.listen / Deno.listenTls -------------------------------------------

function wrapListen<O extends { transport?: string; port?: number; hostname?: string }>(
  original: (options: O) => Deno.Listener,
): (options: O) => Deno.Listener {
  return (options: O) => {
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
      throw error;
    }
    listeners.add(listener);
    announceListening(listener.addr);
    return listener;
  };
}

function replace(name: "serve" | "listen" | "listenTls", value: unknown): void {
  Object.defineProperty(Deno, name, {
    value,
    writable: true,
    configurable: true,
    enumerable: true,
  });
}

type AnyListen = (options: Deno.TcpListenOptions) => Deno.Listener;
replace("listen", wrapListen(Deno.listen as unknown as AnyListen));
replace("listenTls", wrapListen(Deno.listenTls as unknown as AnyListen));
replace("serve", serve);

// ---- node:net servers (node:http, node:https, and every framework on them) -------------
//
// node:net's Server.prototype.listen publishes its options on the
// "net.server.listen" tracing channel before it reads them, so a subscriber
// can add reusePort (and our port and host) without importing node:net or
// node:http: an app that never uses them pays only for this small module
// (measured in `deno task bench startup`). The same channel reports bind
// errors, even when the framework swallows them and exits 0.

/** What we use of a node:net / node:http server. */
interface NodeServer {
  address(): { address: string; port: number } | string | null;
  close(callback?: (error?: Error) => void): void;
  closeIdleConnections?(): void;
  once(event: string, listener: (...args: unknown[]) => void): void;
  prependListener(event: string, listener: (...args: unknown[]) => void): void;
}

interface NodeListenOptions {
  port?: number | string | null;
  host?: string;
  path?: string;
  fd?: number;
  handle?: unknown;
  _handle?: unknown;
  reusePort?: boolean;
}

/** An HTTP response on a node:http server, as far as draining needs it. */
interface NodeResponse {
  headersSent: boolean;
  setHeader(name: string, value: string): void;
}

function adoptNodeServer(server: NodeServer): void {
  if (nodeServers.has(server)) return;
  nodeServers.add(server);
  server.once("close", () => nodeServers.delete(server));
  server.once("listening", () => {
    const address = server.address();
    if (address === null || typeof address === "string") return;
    announceListening({ transport: "tcp", hostname: address.address, port: address.port });
  });
  // Ahead of the app's own handler: count the request, and once draining ask
  // the client to reconnect elsewhere (Connection: close).
  server.prependListener("request", (_request, response) => {
    countRequest();
    const res = response as NodeResponse;
    if (draining && !res.headersSent) res.setHeader("connection", "close");
  });
}

diagnostics.tracingChannel("net.server.listen").subscribe({
  start() {},
  end() {},
  asyncEnd() {},
  asyncStart(message) {
    const { server, options } = message as { server: NodeServer; options: NodeListenOptions };
    // Unix sockets and inherited handles are not pool members: leave them as written.
    if (options.path !== undefined || options.fd !== undefined) return;
    if (options.handle !== undefined || options._handle !== undefined) return;
    options.reusePort = true;
    if ((options.port === undefined || options.port === null) && settings.port !== undefined) {
      options.port = settings.port;
    }
    if (options.host === undefined && settings.host !== undefined) options.host = settings.host;
    adoptNodeServer(server);
  },
  error(message) {
    const { error } = message as { error?: { code?: string; port?: number; address?: string } };
    if (error?.code !== "EADDRINUSE") return;
    tell({
      t: "bind-error",
      port: error.port,
      hostname: error.address,
      message: String((error as Error).message ?? "address already in use"),
    });
  },
});

function closeNodeServer(server: NodeServer): Promise<void> {
  return new Promise((resolve) => {
    // close() stops accepting and resolves once every connection has ended;
    // idle keep-alive connections would otherwise hold it open.
    server.close(() => resolve());
    server.closeIdleConnections?.();
  });
}

// ---- Draining -------------------------------------------------------------------

async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  if (servers.size + nodeServers.size > 0 && settings.closeWindowMs > 0) {
    // Closing an idle keep-alive connection races with a client sending its
    // next request on it ("connection closed before message completed"). So
    // first keep serving: every response now says `Connection: close`, and
    // busy clients move to other workers on their own; only then shut down.
    await new Promise((resolve) => setTimeout(resolve, settings.closeWindowMs));
  }
  for (const listener of listeners) {
    try {
      listener.close();
    } catch { /* already closed by the app */ }
  }
  await Promise.allSettled([
    ...[...servers].map((server) => server.shutdown()),
    ...[...nodeServers].map(closeNodeServer),
  ]);
  await runHooks(shutdownHooks);
  if (orphaned) exitOrphaned();
  Deno.exit(0);
}

Deno.addSignalListener("SIGTERM", () => void drain());

/** The supervisor is gone: nobody will kill us after a grace period, so set our own. */
function drainOrphaned(): void {
  if (orphaned) return;
  orphaned = true;
  setTimeout(exitOrphaned, settings.orphanGraceMs);
  void drain();
}

watchParent(drainOrphaned);

async function serveDefaultExport(): Promise<void> {
  if (servers.size > 0 || listeners.size > 0 || nodeServers.size > 0) return;
  const entry = await import(Deno.mainModule);
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
  serveDefaultExport().catch((error) => console.error(error));
});

// ---- Bridge for mod.ts -----------------------------------------------------------

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
};
(globalThis as Record<symbol, unknown>)[BRIDGE_KEY] = bridge;
