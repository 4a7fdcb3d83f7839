/**
 * The hop: how a worker that is leaving service hands a request it received
 * on a connection it already had to a serving worker, and how the serving
 * worker tells that request from one a client sent.
 *
 * A hop is a plain HTTP/1.1 exchange on a new connection to the shared port
 * (the kernel, or the steering program, places it on a serving worker): the
 * client's request as it arrived, byte for byte where HTTP allows (method,
 * headers, body and its framing), but for its target, which carries a
 * marker: `/~hotreload-hop/<key>/<hops>/<port>/<address><target>`. The key
 * is the instance's secret (the supervisor hands it to its workers in the
 * handshake; clients never see it), so a client cannot forge a hop and with
 * it the client address the app is told. The receiving worker strips the
 * marker and presents the request to the app with the client's own address
 * and target; no header of ours is ever added.
 *
 * The answer is read back raw (status line, header list as written, body
 * with its framing undone), so the worker that received the request can
 * answer with exactly what the serving worker wrote.
 *
 * Only dependency-free code: loaded by the worker preload.
 *
 * @module
 */

/** A client address, as `Deno.NetAddr` and node's socket give it. */
export interface ClientAddress {
  hostname: string;
  port: number;
}

/** A request target that carried a hop marker, taken apart. */
export interface Hop {
  /** The client's own request target (origin-form: `/path?query`). */
  target: string;
  /** Whom the request came from. */
  client: ClientAddress;
  /** How many workers sent it on already (1 for the first hop). */
  hops: number;
}

/**
 * A request that keeps meeting workers leaving service (without steering,
 * each hop is a new connection the kernel places anew) is answered where it
 * is after this many hops.
 */
export const MAX_HOPS = 8;

/** Above this size a hop's head could pass the serving worker's limit (Deno's is 64 KiB). */
export const MAX_HOP_HEAD = 60 * 1024;

/** The path prefix of a hop for the instance whose secret is `key`. */
export function hopMarker(key: string): string {
  return `/~hotreload-hop/${key}/`;
}

/** The request target of a hop: the marker, the hop count, the client, then the client's target. */
export function hopTarget(marker: string, hop: Hop): string {
  return `${marker}${hop.hops}/${hop.client.port}/${
    encodeURIComponent(hop.client.hostname)
  }${hop.target}`;
}

/**
 * Takes a hop apart: `target` is a request target or a whole URL (Deno.serve
 * gives `request.url`). Returns undefined when it does not carry `marker`
 * right after its authority, or carries it malformed (such a request is the
 * client's own, and goes to the app as it is).
 */
export function parseHop(
  target: string,
  marker: string,
): (Hop & { prefix: string }) | undefined {
  const at = pathStart(target);
  if (at < 0 || !target.startsWith(marker, at)) return undefined;
  const rest = target.slice(at + marker.length);
  const parts = /^(\d{1,2})\/(\d{1,5})\/([^/?#]+)(\/.*)?$/s.exec(rest);
  if (!parts) return undefined;
  const [, hops, port, address, original] = parts;
  let hostname: string;
  try {
    hostname = decodeURIComponent(address);
  } catch {
    return undefined;
  }
  if (Number(port) > 65535 || original === undefined) return undefined;
  return {
    prefix: target.slice(0, at),
    target: original,
    client: { hostname, port: Number(port) },
    hops: Number(hops),
  };
}

/** Where the path of a URL or origin-form target starts, or -1. */
function pathStart(target: string): number {
  if (target.startsWith("/")) return 0;
  const scheme = target.indexOf("://");
  return scheme < 0 ? -1 : target.indexOf("/", scheme + 3);
}

/** The origin-form target of a URL Deno.serve gave (`/path?query`), or undefined. */
export function targetOf(url: string): string | undefined {
  const at = pathStart(url);
  return at < 0 ? undefined : url.slice(at);
}

// ---- Writing a request ------------------------------------------------------------

/** Header values are byte strings: one char, one byte (latin1), as they arrived. */
export function latin1(text: string): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
  return bytes;
}

/** A request head: `METHOD target HTTP/x.y`, the headers, the blank line. */
export function requestHead(
  method: string,
  target: string,
  version: string,
  headers: Iterable<readonly [string, string]>,
): Uint8Array<ArrayBuffer> {
  let head = `${method} ${target} HTTP/${version}\r\n`;
  for (const [name, value] of headers) head += `${name}: ${value}\r\n`;
  return latin1(`${head}\r\n`);
}

/** How a message's body is delimited on the wire. */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  | { kind: "close" };

/** A request body's framing, from its headers (RFC 9112 §6.3: a request has no close framing). */
export function requestFraming(headers: Iterable<readonly [string, string]>): Framing {
  let length: number | undefined;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === "transfer-encoding" && /chunked\s*$/i.test(value)) return { kind: "chunked" };
    if (lower === "content-length") length = Number(value.split(",")[0].trim());
  }
  return length !== undefined && Number.isSafeInteger(length) && length > 0
    ? { kind: "length", length }
    : { kind: "none" };
}

/** Writes `body` with `write` in its framing: as it is, or as chunks. */
export async function writeBody(
  body: AsyncIterable<Uint8Array>,
  framing: Framing,
  write: (bytes: Uint8Array) => Promise<unknown>,
): Promise<void> {
  for await (const chunk of body) {
    if (chunk.length === 0) continue;
    if (framing.kind === "chunked") {
      await write(latin1(`${chunk.length.toString(16)}\r\n`));
      await write(chunk);
      await write(CRLF);
    } else await write(chunk);
  }
  if (framing.kind === "chunked") await write(LAST_CHUNK);
}

const CRLF = latin1("\r\n");
const LAST_CHUNK = latin1("0\r\n\r\n");

// ---- Reading a response -------------------------------------------------------------

/** An answer as the serving worker wrote it. */
export interface RawResponse {
  /** "1.1" or "1.0". */
  version: string;
  status: number;
  /** The reason phrase as written (node: the app's `statusMessage`). */
  reason: string;
  /** Every header line, in order, names as written. */
  headers: Array<[string, string]>;
  /** The body with its framing undone; null when the answer has none. */
  body: ReadableStream<Uint8Array<ArrayBuffer>> | null;
  framing: Framing;
}

/** The most a response head may hold before the hop gives up on it. */
const MAX_RESPONSE_HEAD = 256 * 1024;

const EMPTY = new Uint8Array(0);
const HEAD_END = [13, 10, 13, 10];
const LINE_END = [13, 10];

/** Reads bytes from a connection, with what was read past the last parse kept. */
class Bytes {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #buffer: Uint8Array<ArrayBuffer> = EMPTY;

  constructor(reader: ReadableStreamDefaultReader<Uint8Array>) {
    this.#reader = reader;
  }

  /** The bytes held; more() adds to them. */
  get held(): Uint8Array<ArrayBuffer> {
    return this.#buffer;
  }

  /** Reads more; false at the end of the stream. */
  async more(): Promise<boolean> {
    const { value, done } = await this.#reader.read();
    if (done) return false;
    if (this.#buffer.length === 0) {
      this.#buffer = value as Uint8Array<ArrayBuffer>;
      return true;
    }
    const joined = new Uint8Array(this.#buffer.length + value.length);
    joined.set(this.#buffer);
    joined.set(value, this.#buffer.length);
    this.#buffer = joined;
    return true;
  }

  /** Removes and returns the first `n` bytes held (the rest stays a view: no copy). */
  take(n: number): Uint8Array<ArrayBuffer> {
    if (n >= this.#buffer.length) {
      const all = this.#buffer;
      this.#buffer = EMPTY;
      return all;
    }
    const taken = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return taken;
  }

  /** Reads until `pattern` is held; returns its index, or -1 at the end (or past `max`). */
  async find(pattern: number[], max: number): Promise<number> {
    let from = 0;
    while (true) {
      const at = indexOf(this.#buffer, pattern, from);
      if (at >= 0) return at;
      if (this.#buffer.length > max) return -1;
      from = Math.max(0, this.#buffer.length - pattern.length + 1);
      if (!await this.more()) return -1;
    }
  }

  cancel(): void {
    this.#reader.cancel().catch(() => {});
  }
}

function indexOf(bytes: Uint8Array, pattern: number[], from: number): number {
  outer: for (let i = from; i <= bytes.length - pattern.length; i++) {
    for (let j = 0; j < pattern.length; j++) if (bytes[i + j] !== pattern[j]) continue outer;
    return i;
  }
  return -1;
}

function text(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    out += String.fromCharCode(...bytes.subarray(i, i + 8192));
  }
  return out;
}

/**
 * Reads the answer to a request from `readable` (interim 1xx answers are
 * skipped: the client was sent its own). `head` says the request was HEAD
 * (its answer has no body whatever its headers say). Throws when the
 * answer is not HTTP/1.x or ends before its head does.
 */
export async function readResponse(
  readable: ReadableStream<Uint8Array>,
  head: boolean,
): Promise<RawResponse> {
  const bytes = new Bytes(readable.getReader());
  while (true) {
    const end = await bytes.find(HEAD_END, MAX_RESPONSE_HEAD);
    if (end < 0) {
      bytes.cancel();
      throw new Error("the serving worker closed the connection before answering");
    }
    const lines = text(bytes.take(end + 4)).slice(0, -4).split("\r\n");
    const status = /^HTTP\/(1\.[01]) (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!status) {
      bytes.cancel();
      throw new Error(`not an HTTP/1.x answer: ${JSON.stringify(lines[0].slice(0, 80))}`);
    }
    const code = Number(status[2]);
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) headers.push([line.slice(0, colon), line.slice(colon + 1).trim()]);
    }
    if (code >= 100 && code < 200 && code !== 101) continue; // interim: the next head follows
    const framing = responseFraming(code, head, headers);
    return {
      version: status[1],
      status: code,
      reason: status[3] ?? "",
      headers,
      framing,
      body: framing.kind === "none" ? (bytes.cancel(), null) : bodyStream(bytes, framing),
    };
  }
}

/** RFC 9112 §6.3, for an answer. */
function responseFraming(status: number, head: boolean, headers: Array<[string, string]>): Framing {
  if (head || status === 204 || status === 304 || status < 200) return { kind: "none" };
  let length: number | undefined;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower === "transfer-encoding" && /chunked\s*$/i.test(value)) return { kind: "chunked" };
    if (lower === "content-length") length = Number(value.split(",")[0].trim());
  }
  if (length === undefined || !Number.isSafeInteger(length) || length < 0) return { kind: "close" };
  return length === 0 ? { kind: "none" } : { kind: "length", length };
}

/** The body as a stream, its framing undone. */
function bodyStream(bytes: Bytes, framing: Framing): ReadableStream<Uint8Array<ArrayBuffer>> {
  let left = framing.kind === "length" ? framing.length : Infinity;
  /** Chunked: bytes left in the current chunk and its CRLF, or 0 before the next size line. */
  let inChunk = 0;
  let done = false;
  const fail = (message: string): never => {
    bytes.cancel();
    throw new Error(`the serving worker's answer ended early: ${message}`);
  };
  const finish = (controller: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>) => {
    done = true;
    bytes.cancel();
    controller.close();
  };

  /** One step of a chunked body; true once it enqueued or closed. */
  async function chunked(
    controller: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>,
  ): Promise<boolean> {
    if (inChunk === 0) {
      const end = await bytes.find(LINE_END, 4096);
      if (end < 0) fail("in a chunk size");
      const size = parseInt(text(bytes.take(end + 2)).split(";")[0].trim(), 16);
      if (!Number.isSafeInteger(size) || size < 0) fail("at a chunk size that is not a number");
      if (size === 0) {
        // Trailers (dropped), up to the blank line.
        while (true) {
          const line = await bytes.find(LINE_END, 65536);
          if (line < 0 || bytes.take(line + 2).length === 2) break;
        }
        finish(controller);
        return true;
      }
      inChunk = size + 2;
    }
    if (inChunk > 2) {
      if (bytes.held.length === 0 && !await bytes.more()) fail("in a chunk");
      const data = bytes.take(Math.min(bytes.held.length, inChunk - 2));
      inChunk -= data.length;
      controller.enqueue(data);
      return true;
    }
    while (bytes.held.length < inChunk) if (!await bytes.more()) fail("after a chunk");
    bytes.take(inChunk);
    inChunk = 0;
    return false;
  }

  /** One step of a body of known length, or read until the connection closes. */
  async function plain(
    controller: ReadableStreamDefaultController<Uint8Array<ArrayBuffer>>,
  ): Promise<boolean> {
    if (bytes.held.length === 0 && !await bytes.more()) {
      if (framing.kind !== "close") fail(`${left} bytes short`);
      finish(controller);
      return true;
    }
    const chunk = bytes.take(Math.min(bytes.held.length, left));
    left -= chunk.length;
    controller.enqueue(chunk);
    if (left === 0) finish(controller);
    return true;
  }

  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    async pull(controller) {
      if (done) return controller.close();
      // A pull that enqueues nothing is not called again: step until one does.
      while (!await (framing.kind === "chunked" ? chunked(controller) : plain(controller)));
    },
    cancel() {
      bytes.cancel();
    },
  });
}
