/**
 * The app's `Deno.serve` handler as a pool member's server calls it.
 *
 * In service, an app's request reaches the app as Deno gave it, with one
 * check: a request another worker sent on (a hop: its URL carries the
 * instance's marker, hop.ts) is unwrapped first, so the app sees it as the
 * client sent it, with the client's address. Out of service (draining, or
 * held), each request is sent on to a serving worker (forward.ts), so no
 * client gets old code once new code serves; once the worker hands its
 * clients over (draining, or held and told that the whole new generation
 * serves), its answers say `Connection: close`.
 *
 * A handler that declares no parameters (`() => new Response("hi")`) keeps
 * Deno's fast path: Deno then builds no Request at all (ext/http/00_serve.ts,
 * `handler.length === 0`), and neither does the wrapper, which declares none
 * either. Such an app answers every request the same whatever it asks, so a
 * hop needs no unwrapping; but a worker out of service has no request to
 * send on, so it answers each connection's next request itself (the old
 * code, once more), with `Connection: close`, from the moment it is held or
 * drains: its clients reconnect to new code at once, as those of a worker
 * that sends requests on do, instead of getting old code until every new
 * worker is ready (rebalancing spreads them after). (Deno's HTTP/1.1 server
 * does not close a connection after such an answer; clients do: fetch, curl,
 * wrk, browsers.)
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */
import { type ClientAddress, parseHop } from "./hop.ts";
import { asksToClose, forwardRequest, hopDestination } from "./forward.ts";
import type { Service } from "./service.ts";

type ServeHandler = Deno.ServeHandler<Deno.NetAddr>;
type Info = Deno.ServeHandlerInfo<Deno.NetAddr>;

/** What the handler needs of its worker. */
export interface PoolContext {
  readonly service: Service;
  /** Hops carry this marker; only workers of this instance know it (hop.ts). */
  readonly marker: string;
  /** The address the server is bound to (hops go to its port). */
  addr(): Deno.NetAddr;
}

/**
 * A worker handing its clients over, or letting one go, asks the client to
 * reconnect instead of reusing this connection; the answer is otherwise the
 * one plain `deno run` writes. A Response from memory (a string, bytes)
 * whose only header is its content type is written by Deno as
 * `content-type` (ext/http/00_serve.ts, its one-header path), whatever case
 * the list holds it in (`Content-Type` for the default a string body gets);
 * with a second header Deno writes each name as the list holds it, so the
 * lone one is set again, held as written here. A streamed body with a lone
 * `Content-Type` (its case as the app wrote it) goes Deno's general path
 * either way and is written `content-type` here: which body a Response
 * holds cannot be seen without reading Deno's internals, and answers from
 * memory are the common ones.
 */
export function withConnectionClose(response: Response): Response {
  if (response.status === 101) return response; // an upgrade: the socket is the app's now
  try {
    addClose(response.headers);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    addClose(copy.headers);
    return copy;
  }
}

/** `Connection: close` added to `headers`: see withConnectionClose. */
function addClose(headers: Headers): void {
  const names = [...headers.keys()];
  if (names.length === 1 && names[0] === "content-type") {
    const type = headers.get("content-type")!;
    headers.delete("content-type");
    headers.set("content-type", type);
  }
  headers.set("connection", "close");
}

/** The app's handler as the pool calls it: see the module text. */
export function poolHandler(handler: ServeHandler, context: PoolContext): ServeHandler {
  if (handler.length === 0) {
    return noRequestHandler(handler as (...args: unknown[]) => Response, context);
  }
  const { service, marker } = context;
  // An answer that comes once the worker is handing its clients over (a slow request that
  // began before) asks the client to reconnect too, like every other answer from then on.
  // So does one the supervisor asks to shed (its clients are spread: supervisor/rebalance.ts).
  return (request, info) => {
    service.begin();
    info.completed.then(service.done, service.done);
    if (!service.outOfService && request.url.indexOf(marker) < 0) {
      service.count();
      const response = handler(request, info);
      return response instanceof Promise
        ? response.then((answer) => closing(answer, request, service))
        : closing(response, request, service);
    }
    return handOn(handler, request, info, context);
  };
}

/** Deno's fast path for a handler that reads no request: see the module text. */
function noRequestHandler(
  handler: (...args: unknown[]) => Response | Promise<Response>,
  { service }: PoolContext,
): () => Response | Promise<Response> {
  const answered = (response: Response) => {
    service.done();
    return service.closeOwnAnswer() ? withConnectionClose(response) : response;
  };
  const failed = (error: unknown) => {
    service.done();
    throw error;
  };
  // Declares no parameter, but hands on whatever Deno gives: Deno still passes the request
  // where its fast path does not apply (HTTP/2, tracing), and a handler written
  // `(...args) => app.fetch(...args)` has no declared parameter either.
  return function (this: unknown) {
    service.count();
    if (service.outOfService) service.lastRequestAt = Date.now();
    const response = handler.apply(this, arguments as unknown as unknown[]);
    if (response instanceof Promise) {
      service.begin();
      return response.then(answered, failed);
    }
    return service.closeOwnAnswer() ? withConnectionClose(response) : response;
  };
}

/** A hop's request as the client sent it, and the client's address, for the app. */
function unwrapHop(
  request: Request,
  info: Info,
  marker: string,
): { request: Request; info: Info; hops: number } | undefined {
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
    info: { remoteAddr, completed: info.completed } as Info,
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
  info: Info,
  { service, marker, addr }: PoolContext,
): Promise<Response> {
  let hops = 0;
  const hop = request.url.indexOf(marker) >= 0 ? unwrapHop(request, info, marker) : undefined;
  if (hop) ({ request, info, hops } = hop);
  if (service.outOfService) {
    service.lastRequestAt = Date.now();
    const bound = addr();
    const to = bound.port > 0 ? hopDestination(bound) : undefined;
    if (to) {
      service.relaying++;
      const client: ClientAddress = info.remoteAddr;
      const answer = await forwardRequest(request, client, info.completed, {
        to,
        marker,
        hops: hops + 1,
        close: () => service.outOfService,
        done: service.relayDone,
      });
      if (answer) return answer;
    }
  }
  service.count();
  return closing(await handler(request, info), request, service);
}

/**
 * The answer, asking its client to reconnect when the worker hands its
 * clients over or sheds one (unless the request asks to close anyway: Deno
 * says so then).
 */
function closing(response: Response, request: Request, service: Service): Response {
  // Most answers: nothing asked, and the request's headers are not read.
  if (!service.mayClose) return response;
  // An answer that ends its connection anyway (the request asked to close; an upgrade) takes no
  // shed: the next one lets its connection go.
  if (response.status === 101 || asksToClose(request.headers)) return response;
  return service.closeThis() ? withConnectionClose(response) : response;
}
