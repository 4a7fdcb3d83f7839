/**
 * Sending a request on (a hop, hop.ts): what a worker out of service does
 * with each request that still reaches it on a connection it already had.
 * The request goes to the shared port, where a serving worker answers it
 * with the app's new code; that answer is given back exactly as the serving
 * worker wrote it (status, headers in their order and case, body and its
 * length), with `Connection: close` added (held or draining), so that the
 * client's next request opens a new connection, which reaches a serving
 * worker directly: each client's request pays for one hop, not every one
 * until the worker drains (measured: about 50 hops per reload for 50 wrk
 * connections, against about 200 when held workers did not ask until the
 * whole new generation served). Old code never answers a request it did not
 * already have, and no connection is closed under a client that is sending
 * on it.
 *
 * What cannot be sent on is answered here, by the app, with `Connection:
 * close`: an upgrade (the socket would have to be relayed for its whole
 * life), a target that is not a path (`*`, absolute form), a request past
 * MAX_HOPS or whose head is too large for the serving worker, a TLS server's
 * (the hop would need a certificate for 127.0.0.1), and any request when
 * this worker may not connect to the port (its net permission names only
 * what it listens on).
 *
 * Dependency-free: loaded by the worker preload.
 *
 * @module
 */
import {
  type ClientAddress,
  type Framing,
  hopTarget,
  MAX_HOP_HEAD,
  MAX_HOPS,
  type RawResponse,
  readResponse,
  requestFraming,
  requestHead,
  targetOf,
  writeBody,
} from "./hop.ts";

/** Where hops go: the shared port, on loopback when it listens on every address. */
export interface Destination {
  hostname: string;
  port: number;
}

/** Each listener's destination, once its permission was asked: asked once per address. */
const destinations = new Map<string, Destination | undefined>();

/**
 * The destination of hops from a server listening on `addr`, or undefined
 * when this worker may not connect to it.
 */
export function hopDestination(addr: Deno.NetAddr): Destination | undefined {
  const key = `${addr.hostname}:${addr.port}`;
  if (!destinations.has(key)) destinations.set(key, destinationOf(addr));
  return destinations.get(key);
}

function destinationOf(addr: Deno.NetAddr): Destination | undefined {
  const hostname = addr.hostname === "0.0.0.0"
    ? "127.0.0.1"
    : addr.hostname === "::"
    ? "::1"
    : addr.hostname;
  try {
    const host = `${hostname.includes(":") ? `[${hostname}]` : hostname}:${addr.port}`;
    const state = Deno.permissions.querySync({ name: "net", host }).state;
    return state === "granted" ? { hostname, port: addr.port } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Whether a request asks to close its connection after the answer: Deno's
 * server then writes `connection: close` itself, and one more of ours would
 * be written as a second line.
 */
export function asksToClose(headers: Headers): boolean {
  return /(^|,)\s*close\s*(,|$)/i.test(headers.get("connection") ?? "");
}

/** Methods a `Request` cannot carry (the serving worker rebuilds one), and upgrades' own. */
const NOT_SENT_ON = new Set(["CONNECT", "TRACE", "TRACK"]);

/** Headers that describe the hop's connection, not the answer: the client's connection gets its own. */
const CONNECTION_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "date"]);

/** One hop under way: the connection, written to and read from. */
interface Exchange {
  answer: RawResponse;
  close(): void;
}

/**
 * Opens a hop, writes the request head and its body (in the background),
 * and reads the answer's head. Undefined when the connection could not be
 * made (nothing was sent: the caller may answer the request itself).
 */
async function exchange(
  to: Destination,
  head: Uint8Array,
  body: AsyncIterable<Uint8Array> | null,
  framing: Framing,
  isHead: boolean,
): Promise<Exchange | undefined> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: to.hostname, port: to.port });
  } catch {
    return undefined;
  }
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* closed by its reader */ }
  };
  const write = async (bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
  };
  try {
    await write(head);
  } catch {
    close();
    return undefined;
  }
  if (body) {
    writeBody(body, framing, write).catch(close);
  }
  try {
    return { answer: await readResponse(conn.readable, isHead), close };
  } catch (error) {
    close();
    throw error;
  }
}

/** The answer's body as a stream that calls `done` once it ended (or was cancelled) and closes. */
function relayed(
  body: ReadableStream<Uint8Array<ArrayBuffer>> | null,
  done: () => void,
): ReadableStream<Uint8Array<ArrayBuffer>> | null {
  if (body === null) {
    done();
    return null;
  }
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done();
  };
  const reader = body.getReader();
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      try {
        const { value, done: end } = await reader.read();
        if (end) {
          finish();
          controller.close();
        } else controller.enqueue(value);
      } catch (error) {
        finish();
        controller.error(error);
      }
    },
    cancel(reason) {
      finish();
      return reader.cancel(reason);
    },
  });
}

/** Where and how a request is sent on. */
export interface HopOptions {
  to: Destination;
  /** The instance's hop marker (hop.ts). */
  marker: string;
  /** This hop's number (1 for the first). */
  hops: number;
  /**
   * Whether to ask the client to reconnect (`Connection: close`), asked when
   * the answer comes: once the worker drains (held: not yet).
   */
  close: () => boolean;
  /** Called once the answer was relayed whole, or failed, or the request is not sent on. */
  done: () => void;
}

/**
 * Deno.serve's side: sends `request` (from `client`) on. Resolves with the
 * serving worker's answer, or undefined when the request is to be answered
 * here (see the module text; nothing of it was read then). `completed` is
 * the request's own (`info.completed`): when it fails, the client has gone,
 * and so does the hop.
 */
export async function forwardRequest(
  request: Request,
  client: ClientAddress,
  completed: Promise<void>,
  { to, marker, hops, close: askToReconnect, done }: HopOptions,
): Promise<Response | undefined> {
  const target = targetOf(request.url);
  const method = request.method;
  if (
    hops > MAX_HOPS || target === undefined || !target.startsWith("/") ||
    NOT_SENT_ON.has(method) || request.headers.has("upgrade") ||
    request.url.startsWith("https:")
  ) {
    done();
    return undefined;
  }
  const headers = [...request.headers];
  const head = requestHead(method, hopTarget(marker, { target, client, hops }), "1.1", headers);
  const framing = requestFraming(headers);
  if (head.length > MAX_HOP_HEAD || (request.body !== null && framing.kind === "none")) {
    done();
    return undefined;
  }
  let hop: Exchange | undefined;
  try {
    hop = await exchange(to, head, request.body, framing, method === "HEAD");
  } catch (error) {
    done();
    // The body was being sent: the request cannot be answered here any more.
    if (request.body !== null) return badGateway(error);
    return undefined;
  }
  if (!hop) {
    done();
    return undefined;
  }
  const { answer, close } = hop;
  completed.catch(close);
  // A list, not a Headers: Deno keeps a list's order and the names' case, as the app wrote them.
  const out = answer.headers.filter(([name]) => !CONNECTION_HEADERS.has(name.toLowerCase()));
  const has = (header: string) => out.some(([name]) => name.toLowerCase() === header);
  let body = relayed(answer.body, () => {
    close();
    done();
  });
  if (body === null && method === "HEAD" && !has("content-length")) {
    // A HEAD answer to a streamed body names no length: an empty stream keeps Deno from adding one.
    body = new ReadableStream({ start: (controller) => controller.close() });
  }
  // Without a body, Deno writes its own `content-length: 0`.
  const answered = body === null && method !== "HEAD"
    ? out.filter(([name]) => name.toLowerCase() !== "content-length")
    : out;
  if (askToReconnect() && !asksToClose(request.headers)) answered.push(["connection", "close"]);
  return new Response(body, {
    status: answer.status,
    statusText: answer.reason,
    headers: answered,
  });
}

function badGateway(error: unknown): Response {
  console.error(`hotreload: a request sent on to a serving worker failed: ${error}`);
  return new Response(null, { status: 502, headers: { connection: "close" } });
}

/** What forwardNode reads of a node:http request. */
export interface NodeRequest extends AsyncIterable<Uint8Array> {
  method?: string;
  url?: string;
  httpVersion: string;
  rawHeaders: string[];
  headers: Record<string, string | string[] | undefined>;
}

/** What forwardNode writes to a node:http response. */
export interface NodeResponse {
  headersSent: boolean;
  writeHead(status: number, reason: string, headers: string[]): unknown;
  write(chunk: Uint8Array): boolean;
  end(): unknown;
  destroy(): unknown;
  once(event: "drain" | "close", listener: () => void): unknown;
}

/**
 * node:http's side of {@link forwardRequest}: takes `request` and returns
 * true, or returns false (nothing read) when the app is to answer it. The
 * answer is written to `response` as the serving worker wrote it, but for
 * `Connection: close`. Once it returned true, exactly one of two follows:
 * `fallback` hands the request to the app (the hop could not be made before
 * any of its body was read), or `done` says the answer was relayed (or failed).
 */
export function forwardNode(
  request: NodeRequest,
  response: NodeResponse,
  client: ClientAddress,
  { to, marker, hops, close: askToReconnect, done }: HopOptions,
  fallback: () => void,
): boolean {
  const target = request.url ?? "/";
  const method = request.method ?? "GET";
  if (
    hops > MAX_HOPS || !target.startsWith("/") || NOT_SENT_ON.has(method) ||
    request.headers.upgrade !== undefined
  ) return false;
  const headers: Array<[string, string]> = [];
  for (let i = 0; i + 1 < request.rawHeaders.length; i += 2) {
    headers.push([request.rawHeaders[i], request.rawHeaders[i + 1]]);
  }
  const head = requestHead(
    method,
    hopTarget(marker, { target, client, hops }),
    request.httpVersion,
    headers,
  );
  if (head.length > MAX_HOP_HEAD) return false;
  const framing = requestFraming(headers);
  void (async () => {
    let hop: Exchange | undefined;
    try {
      hop = await exchange(
        to,
        head,
        framing.kind === "none" ? null : request,
        framing,
        method === "HEAD",
      );
    } catch (error) {
      if (framing.kind === "none") return fallback();
      badNodeGateway(response, error);
      return done();
    }
    if (!hop) return fallback();
    const { answer, close } = hop;
    response.once("close", close);
    // node frames the body itself (chunked unless a length is given). Its Connection and
    // Keep-Alive go through where the serving worker wrote them (node then adds none of its
    // own); asking the client to reconnect, as node writes an answer on a connection it
    // closes: `Connection: close` where it said keep-alive, no Keep-Alive.
    const out: string[] = [];
    let closeSaid = false;
    const closing = askToReconnect();
    for (const [name, value] of answer.headers) {
      const lower = name.toLowerCase();
      if (lower === "transfer-encoding") continue;
      if (closing && (lower === "keep-alive" || lower === "connection")) {
        if (lower === "connection" && !closeSaid) out.push(name, "close");
        closeSaid ||= lower === "connection";
        continue;
      }
      out.push(name, value);
    }
    if (closing && !closeSaid) out.push("Connection", "close");
    try {
      response.writeHead(answer.status, answer.reason, out);
      if (answer.body) {
        for await (const chunk of answer.body) {
          if (!response.write(chunk)) {
            await new Promise<void>((resolve) => response.once("drain", () => resolve()));
          }
        }
      }
      response.end();
    } catch {
      response.destroy();
    } finally {
      close();
      done();
    }
  })();
  return true;
}

function badNodeGateway(response: NodeResponse, error: unknown): void {
  console.error(`hotreload: a request sent on to a serving worker failed: ${error}`);
  try {
    if (response.headersSent) return void response.destroy();
    response.writeHead(502, "Bad Gateway", ["Connection", "close", "Content-Length", "0"]);
    response.end();
  } catch {
    response.destroy();
  }
}
