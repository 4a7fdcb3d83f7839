/**
 * Makes every `node:net` server (so `node:http`, `node:https`, and Express,
 * Koa, Fastify, Hono's node adapter, ...) a pool member, without a change to
 * the app. Runs inside workers; dependency-free but for one node built-in.
 *
 * node:net's `Server.prototype.listen` publishes its options on the
 * "net.server.listen" tracing channel before it reads them, so a subscriber
 * can add `reusePort` (and the pool's port and host when the app names none)
 * without importing node:net or node:http: an app that never uses them pays
 * only for node:diagnostics_channel (measured by `deno task bench startup`).
 * The same channel reports bind errors, even those a framework swallows
 * before exiting 0.
 */
import diagnostics from "node:diagnostics_channel";
import { type ClientAddress, parseHop } from "./hop.ts";

/** What a worker needs to know about its node servers. */
export interface NodeServerHooks {
  /** The pool's port and host, for a listen() that names none. */
  port?: number;
  host?: string;
  /** A server is listening; `probe` GETs a path from this very server (HTTP servers only). */
  onListening(
    addr: Deno.NetAddr,
    probe?: (path: string) => Promise<{ status: number; body: string }>,
  ): void;
  /** A request arrived, before the app's own handler sees it. */
  onRequest(response: NodeResponse): void;
  /** An HTTP/2 stream (a request, a gRPC call) arrived; it is open until its `close`. */
  onStream(stream: NodeStream): void;
  /** The hop marker (hop.ts): a request whose target carries it was sent on by another worker. */
  marker: string;
  /** True while requests are to be sent on to the serving workers (draining, or held). */
  outOfService(): boolean;
  /**
   * Sends a request on (from `client`, as hop number `hops`, the server
   * listening on `address`) and returns true, or returns false when the app
   * is to answer it; `app` hands it to the app after all.
   */
  forward?(
    request: unknown,
    response: unknown,
    client: ClientAddress,
    hops: number,
    address: Deno.NetAddr,
    app: () => void,
  ): boolean;
  /** listen() failed with EADDRINUSE. */
  onBindError(port: number | undefined, hostname: string | undefined, message: string): void;
}

/** An HTTP response on a node:http server, as far as a worker needs it. */
export interface NodeResponse {
  headersSent: boolean;
  /** node:http's own choice: false writes its `Connection: close` and closes after the answer. */
  shouldKeepAlive: boolean;
  once(event: "close", listener: () => void): void;
}

/** An HTTP/2 stream, as far as a worker needs it. */
export interface NodeStream {
  once(event: "close", listener: () => void): void;
}

/** An HTTP/2 session (one client connection), as far as a worker needs it. */
interface NodeSession {
  closed: boolean;
  /** Graceful: sends GOAWAY, lets the open streams finish, then closes. */
  close(): void;
  once(event: "close" | "stream", listener: () => void): void;
}

/** The node servers of this worker. */
export interface NodeServers {
  count(): number;
  /** True while one of them still listens. */
  listening(): boolean;
  /**
   * Stops accepting; the connections they have stay open. HTTP/2 clients
   * get a GOAWAY at once: they open their next streams elsewhere, while the
   * streams already here finish.
   */
  stopListening(): void;
  /** Stops accepting, closes idle connections; resolves once every connection has ended. */
  closeAll(): Promise<void>;
}

/** What we use of a node:net / node:http server. */
interface NodeServer {
  address(): { address: string; port: number } | string | null;
  listening: boolean;
  /** The listening handle: listening again on it re-arms an accept that failed (EMFILE). */
  _handle?: { listen?(backlog: number): number } | null;
  close(callback?: (error?: Error) => void): void;
  closeIdleConnections?(): void;
  once(event: string, listener: (...args: unknown[]) => void): void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  prependListener(event: string, listener: (...args: unknown[]) => void): void;
  listenerCount(event: string): number;
}

/** A socket a WebSocket upgrade took over from the HTTP server. */
interface UpgradedSocket {
  destroyed: boolean;
  bytesRead: number;
  end(data: Uint8Array): void;
  once(event: "close", listener: () => void): void;
}

/** A WebSocket close frame, code 1001 "going away" (unmasked, as a server sends it). */
const GOING_AWAY = new Uint8Array([0x88, 0x02, 0x03, 0xe9]);

/** How long a WebSocket must have received nothing before a draining worker closes it. */
const QUIET_MS = 30;
/** How long a draining worker waits for that quiet at most; then it closes anyway. */
const QUIET_WAIT_MS = 1000;

/**
 * Ends each WebSocket with a 1001 close once nothing has reached it for
 * QUIET_MS (or after QUIET_WAIT_MS). A message the client sends as the close
 * frame travels to it is lost: the server may not answer after its close
 * (socket.io counts the ack as failed). Closing just after one arrived (as
 * at once would, when the client talks steadily) makes that crossing likely;
 * closing in a pause between messages leaves only the network's delay.
 * Resolves once every socket was ended.
 */
function endWhenQuiet(sockets: UpgradedSocket[]): Promise<void> {
  if (sockets.length === 0) return Promise.resolve();
  const started = Date.now();
  const seen = new Map(sockets.map((socket) => [socket, { read: socket.bytesRead, at: started }]));
  return new Promise((resolve) => {
    const check = setInterval(() => {
      const now = Date.now();
      for (const [socket, last] of seen) {
        if (socket.bytesRead !== last.read) {
          Object.assign(last, { read: socket.bytesRead, at: now });
        }
        const quiet = now - last.at >= QUIET_MS || now - started >= QUIET_WAIT_MS;
        if (socket.destroyed || quiet) {
          if (!socket.destroyed) socket.end(GOING_AWAY);
          seen.delete(socket);
        }
      }
      if (seen.size > 0) return;
      clearInterval(check);
      resolve();
    }, 5);
  });
}

/**
 * An HTTP/2 server (node:http2, secure or not; grpc-js serves on one). It
 * must never get a `request` listener: that switches on Node's
 * compatibility layer, which then also answers every stream the app handles
 * itself (grpc-js calls failed with "Received RST_STREAM with code 0").
 */
function isHttp2(server: NodeServer): boolean {
  return typeof (server as { updateSettings?: unknown }).updateSettings === "function";
}

/** The normalized options listen() publishes, as far as we touch them. */
interface ListenOptions {
  port?: number | string | null;
  host?: string;
  path?: string;
  fd?: number;
  handle?: unknown;
  _handle?: unknown;
  reusePort?: boolean;
}

/**
 * GETs `path` from `server` itself, never through the shared port: a private
 * node:http server on 127.0.0.1 hands its one request to `server`'s own
 * "request" listeners. node:http is loaded here only, with --ready-path.
 */
async function probe(server: NodeServer, path: string): Promise<{ status: number; body: string }> {
  const http = await import("node:http");
  // The relay listens on loopback, where any local user may connect: it hands
  // on only the request that carries this secret, and refuses every other.
  const token = crypto.randomUUID();
  const relay = http.createServer((request, response) => {
    if (request.headers[PROBE_HEADER] !== token) {
      response.writeHead(403, { connection: "close" });
      response.end();
      return;
    }
    delete request.headers[PROBE_HEADER];
    probes.add(response);
    (server as unknown as { emit(e: string, ...a: unknown[]): void }).emit(
      "request",
      request,
      response,
    );
  });
  relays.add(relay);
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = relay.address() as { port: number };
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      headers: { [PROBE_HEADER]: token },
    });
    return { status: response.status, body: await response.text() };
  } finally {
    relay.close();
    relay.closeAllConnections();
  }
}

/**
 * net.Server's own `close` (the deepest in the prototype chain): it stops
 * listening and leaves every connection open. http.Server's `close` also
 * closes idle keep-alive connections at once, racing the request a client
 * may be sending on one; a draining worker does that only after its close
 * window. Found on the server, since importing node:net would cost every
 * worker's start about 20 ms.
 */
function listeningClose(server: NodeServer): NodeServer["close"] {
  let close = server.close;
  for (let proto = Object.getPrototypeOf(server); proto; proto = Object.getPrototypeOf(proto)) {
    if (Object.hasOwn(proto, "close") && typeof proto.close === "function") close = proto.close;
  }
  return close;
}

/** Carries the probe's secret to its relay. */
const PROBE_HEADER = "x-hotreload-probe";

/** The probes' own servers: never pool members. */
const relays = new WeakSet<object>();

/** What a listen() published on the "net.server.listen" channel goes to. */
interface ListenChannelHandlers {
  asyncStart(message: unknown): void;
  error(message: unknown): void;
}

/** The worker's handlers, once watchNodeServers has run (no server listens before). */
let listenChannelHandlers: ListenChannelHandlers | undefined;

// Subscribed as this module is evaluated, before a warm spare blocks on its handshake
// (worker_preload.ts imports child_runtime.ts last): the first subscription costs 2.4 ms of a
// worker's start here (its CPU profile), which a spare now pays while it waits.
diagnostics.tracingChannel("net.server.listen").subscribe({
  start() {},
  end() {},
  asyncEnd() {},
  asyncStart: (message) => listenChannelHandlers?.asyncStart(message),
  error: (message) => listenChannelHandlers?.error(message),
});
/** The probes' answers: a health check is not a request the app served. */
const probes = new WeakSet<object>();

/**
 * How often a listening node server is re-armed. Deno's node:net (2.9's
 * libuv layer) stops accepting for good after an accept fails (EMFILE: out
 * of descriptors), leaving the port to queue connections nobody accepts;
 * listening again on the same handle makes it try again. nginx retries
 * accepting after 500 ms too. A re-arm that finds nothing to accept costs
 * one call.
 */
const REARM_MS = 500;

/** True on the Deno whose node:net needs re-arming (2.9 and newer: its libuv layer). */
const rearms = (() => {
  const [major, minor] = Deno.version.deno.split(".").map(Number);
  return major > 2 || (major === 2 && minor >= 9);
})();

/** Re-arms `server`'s accept while it listens (see REARM_MS); an unref'd timer. */
function rearmWhileListening(server: NodeServer): void {
  const timer = setInterval(() => {
    const handle = server._handle;
    if (!server.listening || !handle) return clearInterval(timer);
    try {
      handle.listen?.(511);
    } catch { /* closed meanwhile */ }
  }, REARM_MS);
  Deno.unrefTimer(timer);
}

/** A request another worker sent on: its target and client as the client sent them (hop.ts). */
function unwrapHop(request: NodeRequestIn, marker: string): number {
  const hop = request.url === undefined ? undefined : parseHop(request.url, marker);
  if (!hop) return 0;
  request.url = hop.target;
  // One request per hop connection: its socket may say who the client is.
  Object.defineProperties(request.socket, {
    remoteAddress: { value: hop.client.hostname, configurable: true },
    remotePort: { value: hop.client.port, configurable: true },
    remoteFamily: {
      value: hop.client.hostname.includes(":") ? "IPv6" : "IPv4",
      configurable: true,
    },
  });
  return hop.hops;
}

/** What a request handler sees of a node:http request, as far as hops touch it. */
interface NodeRequestIn {
  url?: string;
  socket: { remoteAddress?: string; remotePort?: number };
}

/** A TLS server (node:https): hops speak plain HTTP, so its requests are never sent on. */
function isTls(server: NodeServer): boolean {
  return typeof (server as { setSecureContext?: unknown }).setSecureContext === "function";
}

/** Subscribes to node:net's listen channel; returns this worker's node servers. */
export function watchNodeServers(hooks: NodeServerHooks): NodeServers {
  const servers = new Set<NodeServer>();
  /** Where each server listens, from the moment it did (a closed server has no address). */
  const addresses = new WeakMap<NodeServer, Deno.NetAddr>();
  /** The HTTP/2 servers' open sessions. */
  const sessions = new Set<NodeSession>();
  /** The sessions that have carried a stream (see goAway). */
  const started = new WeakSet<NodeSession>();
  /** The WebSockets the app upgraded (see trackUpgrades). */
  const upgraded = new Set<UpgradedSocket>();
  /** The servers told to stop listening, and when each has closed. */
  const closed = new Map<NodeServer, Promise<void>>();

  /**
   * WebSockets the app upgraded (socket.io, ws): the HTTP server no longer
   * sees them, so a draining worker ends them itself, after its close
   * window and in a pause (endWhenQuiet), with a 1001 close as Deno.serve
   * does: clients reconnect to a serving worker instead of talking to old
   * code until --grace. Tracked only when the app listens for upgrades (a
   * listener of our own would make the server accept upgrades it refused).
   */
  function trackUpgrades(server: NodeServer): void {
    let tracking = false;
    const track = () => {
      if (tracking) return;
      tracking = true;
      server.prependListener("upgrade", (request, socket) => {
        const headers = (request as { headers?: Record<string, string> }).headers;
        if (headers?.upgrade?.toLowerCase() !== "websocket") return;
        const upgradedSocket = socket as UpgradedSocket;
        upgraded.add(upgradedSocket);
        upgradedSocket.once("close", () => upgraded.delete(upgradedSocket));
      });
    };
    if (server.listenerCount("upgrade") > 0) return track();
    server.on("newListener", (event) => {
      if (event === "upgrade") track();
    });
  }

  /**
   * Sends a session its GOAWAY, but never before its first stream: Deno's
   * node:http2 client (grpc-js on Deno 2.9.6) spins at full CPU forever when
   * a GOAWAY reaches a session it has not yet sent a stream on; Node's
   * client fails the call and moves on. So a session accepted just before its
   * listener closed gets its GOAWAY with its first stream, which the app
   * still answers (old code answers one call rather than a client hanging),
   * and one that never sends a stream gets it when the idle connections close.
   */
  function goAway(session: NodeSession, now: boolean): void {
    if (session.closed) return;
    if (now || started.has(session)) session.close();
    else {
      session.once("stream", () => {
        if (!session.closed) session.close();
      });
    }
  }

  function adopt(server: NodeServer): void {
    if (servers.has(server)) return;
    servers.add(server);
    server.once("close", () => servers.delete(server));
    trackUpgrades(server);
    server.once("listening", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return;
      addresses.set(server, { transport: "tcp", hostname: address.address, port: address.port });
      if (rearms) rearmWhileListening(server);
      const http = (server as { listeners?(event: string): unknown[] }).listeners?.("request");
      hooks.onListening(
        { transport: "tcp", hostname: address.address, port: address.port },
        http && http.length > 0 ? (path) => probe(server, path) : undefined,
      );
      // The app listened only after this worker was told to leave (its entry was still
      // starting): no connection may reach it now (a close before it listened did nothing).
      if (stopped) stop(server);
    });
    if (isHttp2(server)) {
      server.prependListener("stream", (stream) => hooks.onStream(stream as NodeStream));
      server.prependListener("session", (session) => {
        const http2Session = session as NodeSession;
        sessions.add(http2Session);
        http2Session.once("close", () => sessions.delete(http2Session));
        http2Session.once("stream", () => started.add(http2Session));
        // A session that opens while draining (accepted before the listener closed) goes too.
        if (closed.size > 0) goAway(http2Session, false);
      });
      return;
    }
    // Ahead of the app's own handler (a net server never emits "request").
    server.prependListener("request", (_request, response) => {
      if (!probes.has(response as object)) hooks.onRequest(response as NodeResponse);
    });
    // An HTTP/1 server's requests are seen before its listeners see them: a hop
    // is unwrapped, and out of service a request is sent on.
    if (typeof server.closeIdleConnections === "function") {
      const emitter = server as unknown as { emit(event: string, ...args: unknown[]): boolean };
      const emit = emitter.emit;
      const forward = isTls(server) ? undefined : hooks.forward;
      emitter.emit = function (event: string, ...args: unknown[]): boolean {
        const app = () => emit.call(this, event, ...args);
        if (event !== "request") return app();
        const request = args[0] as NodeRequestIn;
        const hops = request.url !== undefined && request.url.indexOf(hooks.marker) >= 0
          ? unwrapHop(request, hooks.marker)
          : 0;
        const address = addresses.get(server);
        if (!forward || !address || !hooks.outOfService()) return app();
        const client = {
          hostname: request.socket.remoteAddress ?? "",
          port: request.socket.remotePort ?? 0,
        };
        return forward(args[0], args[1], client, hops + 1, address, app) || app();
      };
    }
  }

  listenChannelHandlers = {
    asyncStart(message) {
      const { server, options } = message as { server: NodeServer; options: ListenOptions };
      if (relays.has(server)) return;
      // Unix sockets and inherited handles are not pool members: leave them as written.
      if (options.path !== undefined || options.fd !== undefined) return;
      if (options.handle !== undefined || options._handle !== undefined) return;
      options.reusePort = true;
      if ((options.port === undefined || options.port === null) && hooks.port !== undefined) {
        options.port = hooks.port;
      }
      if (options.host === undefined && hooks.host !== undefined) options.host = hooks.host;
      adopt(server);
    },
    error(message) {
      const { error } = message as { error?: { code?: string; port?: number; address?: string } };
      if (error?.code !== "EADDRINUSE") return;
      const text = (error as Error).message ?? "address already in use";
      hooks.onBindError(error.port, error.address, String(text));
    },
  };

  /** True once told to stop listening: a server that starts listening later stops at once. */
  let stopped = false;
  const stop = (server: NodeServer) => {
    const close = listeningClose(server);
    closed.set(server, new Promise<void>((resolve) => close.call(server, () => resolve())));
  };
  const stopListening = () => {
    stopped = true;
    for (const server of servers) if (!closed.has(server)) stop(server);
    for (const session of sessions) goAway(session, false);
  };
  return {
    count: () => servers.size,
    listening: () => [...servers].some((server) => server.listening),
    stopListening,
    closeAll() {
      stopListening();
      // close() alone waits for idle keep-alive connections.
      for (const server of closed.keys()) server.closeIdleConnections?.();
      for (const session of sessions) goAway(session, true);
      const sockets = [...upgraded].filter((socket) => !socket.destroyed);
      return Promise.all([...closed.values(), endWhenQuiet(sockets)]).then(() => {});
    },
  };
}
