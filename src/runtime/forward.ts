/**
 * A draining worker's answer to a request that reaches it after the switch
 * (on a keep-alive connection it had opened before, or, without steering,
 * through its still-open listener during the close window): the request is
 * sent on to the shared port, where the serving workers take it, and their
 * answer goes back with `Connection: close`, so the client's next request
 * opens a new connection and never meets the old code again. Old code never
 * answers a request it did not already have, and no connection is closed
 * under a client that is sending on it.
 *
 * Dependency-free: loaded by the worker preload.
 */

/** Counts how often a request was sent on; past MAX_HOPS it is answered where it is. */
export const HOP_HEADER = "x-hotreload-forwarded";
/**
 * Without steering, a forwarded request may meet another draining worker:
 * each hop is a new connection the kernel places anew, so a few hops find a
 * serving worker almost always.
 */
const MAX_HOPS = 8;
/** Larger request bodies are answered locally (they would be held in memory to be sent on). */
const MAX_BODY_BYTES = 1 << 20;
/** Hop-by-hop headers: they describe one connection, not the message. */
const HOP_BY_HOP = ["connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"];

/** Each listener's origin, once its permission was asked: asked once per address. */
const origins = new Map<string, string | undefined>();

/**
 * The origin requests are sent on to (the port this listener shares), or
 * undefined when the worker may not connect to it (its net permission names
 * only what it listens on).
 */
export function forwardOrigin(addr: Deno.NetAddr): string | undefined {
  const key = `${addr.hostname}:${addr.port}`;
  if (!origins.has(key)) origins.set(key, originOf(addr));
  return origins.get(key);
}

function originOf(addr: Deno.NetAddr): string | undefined {
  const host = addr.hostname === "0.0.0.0"
    ? "127.0.0.1"
    : addr.hostname === "::"
    ? "::1"
    : addr.hostname;
  const authority = `${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
  try {
    const state = Deno.permissions.querySync({ name: "net", host: authority }).state;
    return state === "granted" ? `http://${authority}` : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Sends `request` on to `origin`; resolves with the serving worker's answer,
 * or with undefined when it should be answered here (an upgrade, too many
 * hops, a large body, or nobody answered), together with the request to
 * answer (its body, once read, cannot be read again).
 */
export async function forward(
  request: Request,
  origin: string,
): Promise<{ response?: Response; request: Request }> {
  const hops = Number(request.headers.get(HOP_HEADER) ?? 0);
  if (hops >= MAX_HOPS || request.headers.has("upgrade")) return { request };
  const length = Number(request.headers.get("content-length") ?? 0);
  if (length > MAX_BODY_BYTES || (request.body && !request.headers.has("content-length"))) {
    return { request };
  }
  const body = request.body ? await request.arrayBuffer() : undefined;
  const local = () => new Request(request, { body });
  const headers = new Headers(request.headers);
  for (const name of HOP_BY_HOP) headers.delete(name);
  headers.set(HOP_HEADER, String(hops + 1));
  const url = new URL(request.url);
  try {
    const answer = await fetch(`${origin}${url.pathname}${url.search}`, {
      method: request.method,
      headers,
      body,
      redirect: "manual",
    });
    const out = new Headers(answer.headers);
    for (const name of [...HOP_BY_HOP, "content-length", "content-encoding"]) out.delete(name);
    out.set("connection", "close");
    return {
      response: new Response(answer.body, {
        status: answer.status,
        statusText: answer.statusText,
        headers: out,
      }),
      request,
    };
  } catch {
    return { request: local() };
  }
}

/** What forwardNode reads of a node:http request and writes to its response. */
interface NodeRequest {
  method?: string;
  url?: string;
  headers: Record<string, string | string[] | undefined>;
}
interface NodeResponseOut {
  writeHead(status: number, headers: Record<string, string>): unknown;
  write(chunk: Uint8Array): unknown;
  end(): unknown;
  destroy(): unknown;
}

/**
 * The node:http side of {@link forward}: takes a request without a body
 * (re-sent as is), and returns false for any other, or when it is past
 * MAX_HOPS or an upgrade: the app answers it then. `fallback` hands the
 * request to the app when nobody answered where it was sent.
 */
export function forwardNode(
  request: NodeRequest,
  response: NodeResponseOut,
  origin: string,
  fallback: () => void,
): boolean {
  const hops = Number(request.headers[HOP_HEADER] ?? 0);
  const hasBody = request.headers["content-length"] !== undefined &&
      request.headers["content-length"] !== "0" ||
    request.headers["transfer-encoding"] !== undefined;
  if (hops >= MAX_HOPS || hasBody || request.headers.upgrade !== undefined) return false;
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || HOP_BY_HOP.includes(name)) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  headers.set(HOP_HEADER, String(hops + 1));
  void (async () => {
    let answer: Response;
    try {
      answer = await fetch(`${origin}${request.url ?? "/"}`, {
        method: request.method,
        headers,
        redirect: "manual",
      });
    } catch {
      return fallback();
    }
    const out: Record<string, string> = {};
    answer.headers.forEach((value, name) => {
      if (![...HOP_BY_HOP, "content-length", "content-encoding"].includes(name)) out[name] = value;
    });
    out.connection = "close";
    try {
      response.writeHead(answer.status, out);
      if (answer.body) { for await (const chunk of answer.body) response.write(chunk); }
      response.end();
    } catch {
      response.destroy();
    }
  })();
  return true;
}
