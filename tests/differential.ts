/**
 * The differential suite's parts: an app, a corpus of exchanges written as
 * raw bytes, a raw client, and the comparison. The same exchange runs once
 * against plain `deno run` of the app and once against hotreload; what each
 * side answered is reduced to the same record (status line, header lines
 * but `Date`, how the body was framed, the body) and compared.
 *
 * Nothing here trusts an HTTP client library: every request is the bytes
 * written below, every answer is read as bytes off the socket, so a header
 * added, dropped, reordered or recased on either side shows.
 */
import net from "node:net";
import tls from "node:tls";
import { concat } from "./helpers.ts";

/**
 * The app: deterministic answers (no pid, no time), and `/echo`, which says
 * what the app saw of the request (method, URL, headers, client address,
 * body length and digest).
 */
export const APP = `
const [port, tlsPort, certFile, keyFile] = Deno.args;
const hex = (bytes) => Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
const big = new Uint8Array(64 * 1024).map((_, i) => i % 251);
async function handler(request, info) {
  const url = new URL(request.url);
  switch (url.pathname) {
    case "/echo": {
      const body = request.body ? new Uint8Array(await request.arrayBuffer()) : new Uint8Array();
      return Response.json({
        method: request.method,
        url: request.url,
        headers: [...request.headers],
        addr: info.remoteAddr.hostname,
        port: info.remoteAddr.port,
        length: body.length,
        digest: hex(await crypto.subtle.digest("SHA-256", body)),
        // Fixed width: the answer's length must not depend on the pid.
        pid: String(Deno.pid).padStart(10, "0"),
      });
    }
    case "/cookies":
      return new Response("cookies", {
        headers: [
          ["Set-Cookie", "a=1; Path=/"],
          ["X-Mixed-Case", "yes"],
          ["set-cookie", "b=2; HttpOnly"],
          ["Set-Cookie", "c=3"],
          ["Cache-Control", "no-store"],
        ],
      });
    case "/head":
      return new Response("0123456789", { headers: { "X-Length": "10" } });
    case "/static":
      return new Response("hello");
    case "/nobody":
      return new Response(null, { status: 204, headers: { "X-Empty": "1" } });
    case "/redirect":
      return Response.redirect(new URL("/static", request.url), 302);
    case "/big": {
      let sent = 0;
      return new Response(new ReadableStream({
        pull(controller) {
          if (sent >= 160) return controller.close();
          sent++;
          controller.enqueue(big.slice());
        },
      }), { headers: { "content-type": "application/octet-stream" } });
    }
    case "/sse":
      return new Response(new ReadableStream({
        async start(controller) {
          for (let i = 1; i <= 3; i++) {
            controller.enqueue(new TextEncoder().encode("id: " + i + "\\ndata: event " + i + "\\n\\n"));
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
          controller.close();
        },
      }), { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
    case "/ws": {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = (event) => socket.send("echo: " + event.data);
      return response;
    }
  }
  return new Response("not found", { status: 404 });
}
Deno.serve({ port: Number(port), onListen() {} }, handler);
if (tlsPort) {
  Deno.serve({
    port: Number(tlsPort),
    cert: Deno.readTextFileSync(certFile),
    key: Deno.readTextFileSync(keyFile),
    onListen() {},
  }, handler);
}
`;

/**
 * An app on Deno's fast path: its handler declares no parameters, so Deno
 * builds no Request for it (ext/http/00_serve.ts, \`handler.length === 0\`),
 * and hotreload's wrapper keeps it there (src/runtime/serve_handler.ts). It
 * answers every request alike, with headers in mixed case and two cookies.
 */
export const FAST_APP = `
const [port] = Deno.args;
Deno.serve({ port: Number(port), onListen() {} }, () =>
  new Response("fast path", {
    headers: [["X-Mixed-Case", "yes"], ["Set-Cookie", "a=1"], ["set-cookie", "b=2"]],
  }));
`;

/**
 * The same app on node:http (the way Express, Koa and Fastify serve): what
 * `/echo` says is node's view (raw headers in order and case, the HTTP
 * version, the socket's address), and `/ws` is upgraded by hand, as `ws`
 * and socket.io do it.
 */
export const NODE_APP = `
import http from "node:http";
import crypto from "node:crypto";
const [port] = Deno.args;
const big = new Uint8Array(64 * 1024).map((_, i) => i % 251);
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const server = http.createServer(async (request, response) => {
  const url = new URL(request.url, "http://x");
  switch (url.pathname) {
    case "/echo": {
      const chunks = [];
      for await (const chunk of request) chunks.push(chunk);
      const body = Buffer.concat(chunks);
      response.writeHead(200, { "Content-Type": "application/json" });
      return response.end(JSON.stringify({
        method: request.method,
        url: request.url,
        version: request.httpVersion,
        rawHeaders: request.rawHeaders,
        addr: request.socket.remoteAddress,
        port: request.socket.remotePort,
        length: body.length,
        digest: crypto.createHash("sha256").update(body).digest("hex"),
        pid: String(process.pid).padStart(10, "0"),
      }));
    }
    case "/cookies":
      response.setHeader("Set-Cookie", ["a=1; Path=/", "b=2; HttpOnly", "c=3"]);
      response.setHeader("X-Mixed-Case", "yes");
      return response.end("cookies");
    case "/head":
      response.writeHead(200, { "X-Length": "10", "Content-Length": "10" });
      return response.end(request.method === "HEAD" ? undefined : "0123456789");
    case "/static":
      return response.end("hello");
    case "/nobody":
      response.writeHead(204, { "X-Empty": "1" });
      return response.end();
    case "/redirect":
      response.writeHead(302, { Location: "/static" });
      return response.end();
    case "/big":
      response.setHeader("Content-Type", "application/octet-stream");
      for (let i = 0; i < 160; i++) {
        if (!response.write(big)) await new Promise((resolve) => response.once("drain", resolve));
      }
      return response.end();
    case "/sse":
      response.statusMessage = "Events Follow";
      response.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      if (request.method === "HEAD") return response.end();
      for (let i = 1; i <= 3; i++) {
        response.write("id: " + i + "\\ndata: event " + i + "\\n\\n");
        await pause(20);
      }
      return response.end();
  }
  response.writeHead(404);
  response.end("not found");
});
server.on("upgrade", (request, socket) => {
  const accept = crypto.createHash("sha1")
    .update(request.headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\n" +
    "Connection: Upgrade\\r\\nSec-WebSocket-Accept: " + accept + "\\r\\n\\r\\n");
  socket.on("data", (frame) => {
    const opcode = frame[0] & 0x0f;
    const length = frame[1] & 0x7f;
    const mask = frame.subarray(2, 6);
    const payload = Buffer.from(frame.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]));
    const reply = opcode === 8 ? payload : Buffer.concat([Buffer.from("echo: "), payload]);
    socket.write(Buffer.concat([Buffer.from([0x80 | opcode, reply.length]), reply]));
    if (opcode === 8) socket.end();
  });
});
server.listen(Number(port));
`;

/** Where a side serves: its plain and TLS ports, and the CA to trust for TLS. */
export interface Target {
  port: number;
  tlsPort: number;
  ca: string;
}

/** Clients connect from this address, so the app's view of it is telling. */
export const CLIENT_ADDRESS = "127.0.0.7";

/** One answer as read off the wire, reduced to what is compared. */
export interface Answer {
  status: string;
  /** Header lines as written, in order, but `Date`. */
  headers: string[];
  framing: "length" | "chunked" | "close" | "none";
  /** The body (framing undone): text when short and printable, else its length and digest. */
  body: string;
}

/** A connection read byte by byte. */
export class RawConn {
  readonly socket: net.Socket;
  /** The pids `/echo` said answered on this connection (and those it was reopened as), in order. */
  readonly pids: number[] = [];
  #port = 0;
  #ca?: string;
  /**
   * What arrived and was not read yet: bytes `#start` to `#end` of
   * `#storage`, which grows by doubling. Appending each chunk to a copy of
   * everything unread, and copying the rest after each read, made a 10 MB
   * answer cost gigabytes of copies: under load that blocked the test's
   * event loop for 10 s, longer than the close window it measures.
   */
  #storage = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  #ended = false;
  #wake?: () => void;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Uint8Array) => {
      this.#append(chunk);
      this.#wake?.();
    });
    const end = () => {
      this.#ended = true;
      this.#wake?.();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  /** Connects from CLIENT_ADDRESS; TLS when `tls` names the CA to trust. */
  static open(port: number, ca?: string): Promise<RawConn> {
    return new Promise((resolve, reject) => {
      const tcp = net.connect({ host: "127.0.0.1", port, localAddress: CLIENT_ADDRESS });
      const socket = ca === undefined
        ? tcp
        : tls.connect({ socket: tcp, ca, servername: "localhost", ALPNProtocols: ["http/1.1"] });
      socket.once(ca === undefined ? "connect" : "secureConnect", () => {
        const conn = new RawConn(socket);
        conn.#port = port;
        conn.#ca = ca;
        resolve(conn);
      });
      socket.once("error", reject);
    });
  }

  /** Closes this connection and opens another to the same place, as a client does after `Connection: close`. */
  async reopen(): Promise<RawConn> {
    this.close();
    const conn = await RawConn.open(this.#port, this.#ca);
    conn.pids.push(...this.pids);
    // The pids seen so far stay with the first connection's array too: callers hold that one.
    conn.#shared = this.#shared ?? this.pids;
    return conn;
  }

  /** The pid list of the connection this one reopened, if any (see reopen). */
  #shared?: number[];

  /** The client port the app should see. */
  get localPort(): number {
    return this.socket.localPort!;
  }

  write(bytes: string | Uint8Array): Promise<void> {
    const data = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
    return new Promise((resolve, reject) =>
      this.socket.write(data, (error) => error ? reject(error) : resolve())
    );
  }

  /** Resolves once the peer closed the connection (or after `ms`: false). */
  async closedWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.#ended && Date.now() < deadline) {
      await this.#more(deadline - Date.now());
    }
    return this.#ended;
  }

  close(): void {
    this.socket.destroy();
  }

  /** Waits for more bytes (or the end), at most `ms`. */
  #more(ms = 30_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  async #need(n: number): Promise<void> {
    while (this.#buffer.length < n) {
      if (this.#ended) {
        throw new Error(`connection closed with ${this.#buffer.length} of ${n} bytes`);
      }
      await this.#more();
    }
  }

  /** The bytes not read yet (a view: valid until the next append). */
  get #buffer(): Uint8Array<ArrayBuffer> {
    return this.#storage.subarray(this.#start, this.#end);
  }

  #append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#storage.length) {
      // The unread bytes move to the front, into storage twice their size when half is too small.
      const unread = this.#end - this.#start;
      const needed = unread + chunk.length;
      const storage = 2 * needed > this.#storage.length
        ? new Uint8Array(2 * needed)
        : this.#storage;
      storage.set(this.#storage.subarray(this.#start, this.#end));
      this.#storage = storage;
      this.#start = 0;
      this.#end = unread;
    }
    this.#storage.set(chunk, this.#end);
    this.#end += chunk.length;
  }

  #take(n: number): Uint8Array<ArrayBuffer> {
    const out = this.#storage.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  async #line(): Promise<string> {
    while (true) {
      const at = indexOfCrlf(this.#buffer);
      if (at >= 0) return latin1(this.#take(at + 2)).slice(0, -2);
      if (this.#ended) throw new Error("connection closed in the middle of a line");
      await this.#more();
    }
  }

  /** Reads one HTTP/1.x response (interim ones too: `100 Continue` is an answer here). */
  async response(head = false): Promise<Answer> {
    const status = await this.#line();
    const headers: string[] = [];
    for (let line = await this.#line(); line !== ""; line = await this.#line()) headers.push(line);
    const find = (name: string) =>
      headers.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1)
        .trim();
    const code = Number(status.split(" ")[1]);
    let framing: Answer["framing"] = "none";
    let body: Uint8Array<ArrayBuffer> = new Uint8Array(0);
    if (!head && code >= 200 && code !== 204 && code !== 304) {
      if (/chunked/i.test(find("transfer-encoding") ?? "")) {
        framing = "chunked";
        const parts: Uint8Array[] = [];
        while (true) {
          const size = parseInt(await this.#line(), 16);
          if (size === 0) {
            while ((await this.#line()) !== "");
            break;
          }
          await this.#need(size + 2);
          parts.push(this.#take(size));
          this.#take(2);
        }
        body = concat(parts);
      } else if (find("content-length") !== undefined) {
        framing = "length";
        const length = Number(find("content-length"));
        await this.#need(length);
        body = this.#take(length);
      } else {
        framing = "close";
        while (!this.#ended) await this.#more();
        body = this.#take(this.#buffer.length);
      }
    }
    return {
      status,
      headers: headers.filter((line) => !/^date:/i.test(line)),
      framing,
      body: await describe(this.#normalized(latin1(body))),
    };
  }

  /**
   * The app's `/echo` says the client's port, which the client knows, and the
   * pid that answered, which differs from run to run (so does the server's
   * port, in the URL of a request without Host): the ports are named instead
   * of numbered, and the pid is kept (the test asks which generation
   * answered) and named.
   */
  #normalized(body: string): string {
    const pid = /"pid":"(\d{10})"/.exec(body);
    if (pid) (this.#shared ?? this.pids).push(Number(pid[1]));
    return body.replace(`"port":${this.localPort}`, `"port":"<this connection's port>"`)
      .replace(`//localhost:${this.socket.remotePort}/`, "//localhost:<the server's port>/")
      .replace(/"pid":"\d{10}"/, `"pid":"<pid>"`);
  }

  /** Reads one WebSocket frame (unmasked, as a server sends it), as hex. */
  async frame(): Promise<string> {
    await this.#need(2);
    let length = this.#buffer[1] & 0x7f;
    let header = 2;
    if (length === 126) {
      await this.#need(4);
      length = (this.#buffer[2] << 8) | this.#buffer[3];
      header = 4;
    }
    await this.#need(header + length);
    return hexOf(this.#take(header + length));
  }
}

function indexOfCrlf(bytes: Uint8Array): number {
  for (let i = 0; i + 1 < bytes.length; i++) if (bytes[i] === 13 && bytes[i + 1] === 10) return i;
  return -1;
}

/** Each byte as the character of that code (a 10 MB answer too: in slices, not byte by byte). */
function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let at = 0; at < bytes.length; at += 8192) {
    out += String.fromCharCode(...bytes.subarray(at, at + 8192));
  }
  return out;
}

function hexOf(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

async function describe(text: string): Promise<string> {
  if (text.length <= 4096 && /^[\t\n\r -~]*$/.test(text)) return text;
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const digest = hexOf(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  return `${text.length} bytes, sha-256 ${digest}`;
}

/** A masked client frame: opcode, payload. */
export function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const mask = [1, 2, 3, 4];
  const frame = new Uint8Array(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  frame.set(mask, 2);
  payload.forEach((byte, i) => frame[6 + i] = byte ^ mask[i % 4]);
  return frame;
}

/** One exchange of the corpus: what it sends and reads on a connection, as records. */
export interface Exchange {
  name: string;
  /** Runs over TLS (the app's second port). */
  tls?: boolean;
  /**
   * The request that opens the connection when it must be in use before the
   * exchange (a keep-alive connection opened before a reload): its answer is
   * compared too. Undefined: the exchange cannot run on an old connection.
   */
  warmUp?: string;
  run(conn: RawConn): Promise<unknown[]>;
}

const HOST = "Host: example.test\r\n";

/** A simple request: its bytes, and read one answer (`head`: to a HEAD). */
function ask(request: string, head = false): (conn: RawConn) => Promise<unknown[]> {
  return async (conn) => {
    await conn.write(request);
    return [await conn.response(head)];
  };
}

/**
 * Requests one after another, each once the last was answered; after an
 * answer that says `Connection: close`, the next goes on a new connection,
 * as a client does.
 */
async function inTurn(conn: RawConn, requests: Array<[string, boolean?]>): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const [request, head] of requests) {
    if (answers.at(-1)?.headers.some((line) => /^connection: close$/i.test(line))) {
      conn = await conn.reopen();
    }
    await conn.write(request);
    answers.push(await conn.response(head));
  }
  return answers;
}

const KEEP_ALIVE_WARM_UP = `GET /static HTTP/1.1\r\n${HOST}\r\n`;

/** 60 KiB of headers: 15 of 4,000 bytes, under Deno's 64 KiB limit for a request head. */
const LARGE_HEADERS = Array.from({ length: 15 }, (_, i) => `X-Large-${i}: ${"v".repeat(4000)}\r\n`)
  .join("");

/** The corpus. */
export const CORPUS: Exchange[] = [
  {
    name: "GET, the client address and Host the app sees",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /echo?q=1 HTTP/1.1\r\n${HOST}Accept: text/plain\r\nUser-Agent: raw/1\r\n\r\n`),
  },
  {
    name: "a client header named like hotreload's own",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(
      `GET /echo HTTP/1.1\r\n${HOST}X-Hotreload-Forwarded: 1\r\n` +
        `X-Hotreload-Hop: 127.0.0.1\r\n\r\n`,
    ),
  },
  {
    name: "a chunked request body",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(
      `POST /echo HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n` +
        `5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n`,
    ),
  },
  {
    name: "Expect: 100-continue",
    warmUp: KEEP_ALIVE_WARM_UP,
    async run(conn) {
      await conn.write(
        `POST /echo HTTP/1.1\r\n${HOST}Content-Length: 11\r\nExpect: 100-continue\r\n\r\n`,
      );
      const interim = await conn.response();
      await conn.write("hello there");
      return [interim, await conn.response()];
    },
  },
  {
    name: "three pipelined requests",
    warmUp: KEEP_ALIVE_WARM_UP,
    async run(conn) {
      // As a client pipelines: once an answer says `Connection: close` (or the connection
      // ends), the requests not yet answered are sent again on a new connection.
      let pending = [
        `GET /static HTTP/1.1\r\n${HOST}\r\n`,
        `GET /echo HTTP/1.1\r\n${HOST}\r\n`,
        `GET /head HTTP/1.1\r\n${HOST}\r\n`,
      ];
      const answers: Answer[] = [];
      while (true) {
        await conn.write(pending.join(""));
        while (pending.length > 0) {
          const answer = await conn.response().catch(() => undefined);
          if (!answer) break;
          answers.push(answer);
          pending = pending.slice(1);
          if (answer.headers.some((line) => /^connection: close$/i.test(line))) break;
        }
        if (pending.length === 0) return answers;
        conn = await conn.reopen();
      }
    },
  },
  {
    name: "a request that asks to close the connection",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /static HTTP/1.1\r\n${HOST}Connection: close\r\n\r\n`),
  },
  {
    name: "HTTP/1.0",
    run: ask(`GET /echo HTTP/1.0\r\n\r\n`),
  },
  {
    name: "HTTP/1.0 keep-alive",
    warmUp: `GET /static HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`,
    run: ask(`GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n${HOST}\r\n`),
  },
  {
    name: "HEAD, then GET of the same",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: (conn) =>
      inTurn(conn, [[`HEAD /head HTTP/1.1\r\n${HOST}\r\n`, true], [
        `GET /head HTTP/1.1\r\n${HOST}\r\n`,
      ]]),
  },
  {
    name: "HEAD of a streamed body",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`HEAD /sse HTTP/1.1\r\n${HOST}\r\n`, true),
  },
  {
    name: "60 KiB of headers",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /echo HTTP/1.1\r\n${HOST}${LARGE_HEADERS}\r\n`),
  },
  {
    name: "several Set-Cookie and mixed-case headers",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /cookies HTTP/1.1\r\n${HOST}\r\n`),
  },
  {
    name: "204 and a redirect",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: (conn) =>
      inTurn(conn, [[`GET /nobody HTTP/1.1\r\n${HOST}\r\n`], [
        `GET /redirect HTTP/1.1\r\n${HOST}\r\n`,
      ]]),
  },
  {
    name: "a 10 MB streamed answer",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /big HTTP/1.1\r\n${HOST}\r\n`),
  },
  {
    name: "server-sent events",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /sse HTTP/1.1\r\n${HOST}Accept: text/event-stream\r\n\r\n`),
  },
  {
    name: "a WebSocket: upgrade, echo, close",
    warmUp: KEEP_ALIVE_WARM_UP,
    run: webSocket,
  },
  {
    name: "a WebSocket over TLS (wss)",
    tls: true,
    warmUp: KEEP_ALIVE_WARM_UP,
    run: webSocket,
  },
  {
    name: "GET over TLS",
    tls: true,
    warmUp: KEEP_ALIVE_WARM_UP,
    run: ask(`GET /echo HTTP/1.1\r\n${HOST}\r\n`),
  },
];

async function webSocket(conn: RawConn): Promise<unknown[]> {
  await conn.write(
    `GET /ws HTTP/1.1\r\n${HOST}Upgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const upgrade = await conn.response(true);
  await conn.write(clientFrame(0x1, new TextEncoder().encode("hello")));
  const echo = await conn.frame();
  await conn.write(clientFrame(0x8, new Uint8Array([0x03, 0xe8])));
  const close = await conn.frame();
  return [upgrade, `frame ${echo}`, `close ${close}`];
}

/** Runs `exchange` on a new connection to `target` (its warm-up first when `warm`). */
export async function runFresh(exchange: Exchange, target: Target): Promise<unknown[]> {
  const conn = await RawConn.open(
    exchange.tls ? target.tlsPort : target.port,
    exchange.tls ? target.ca : undefined,
  );
  try {
    return await exchange.run(conn);
  } finally {
    conn.close();
  }
}

/** Opens a connection and sends the exchange's warm-up on it; its answer is the first record. */
export async function warmUp(
  exchange: Exchange,
  target: Target,
): Promise<{ conn: RawConn; first: Answer }> {
  const conn = await RawConn.open(
    exchange.tls ? target.tlsPort : target.port,
    exchange.tls ? target.ca : undefined,
  );
  await conn.write(exchange.warmUp!);
  return { conn, first: await conn.response() };
}

/**
 * Records answered on a connection that was leaving service, or one a
 * worker let go to spread the clients, may carry `Connection: close` where
 * plain Deno's do not (hotreload asks the client to reconnect): that one
 * header is allowed, nothing else. (node:http's answers are compared in its
 * own closing form instead: asClosing.)
 */
export function withoutAddedClose(records: unknown[], reference: unknown[]): unknown[] {
  return records.map((record, i) => {
    const plain = reference[i] as Answer | undefined;
    if (isNodeAnswer(plain)) return record;
    if (typeof record !== "object" || record === null || !("headers" in record)) return record;
    const answer = record as Answer;
    if (plain?.headers?.some((line) => /^connection:\s*close$/i.test(line))) return answer;
    return {
      ...answer,
      headers: answer.headers.filter((line) => !/^connection:\s*close$/i.test(line)),
    };
  });
}

/**
 * An answer with `connection: close` twice as one with it once. A worker on
 * Deno's fast path that hands its clients over adds the header without
 * seeing the request (there is none); when the request asked to close too,
 * Deno writes its own line after it.
 */
export function withoutDuplicateClose(records: unknown[]): unknown[] {
  return records.map((record) => {
    if (typeof record !== "object" || record === null || !("headers" in record)) return record;
    const answer = record as Answer;
    const closes = answer.headers.filter((line) => /^connection:\s*close$/i.test(line));
    if (closes.length < 2) return answer;
    const first = answer.headers.findIndex((line) => /^connection:\s*close$/i.test(line));
    return { ...answer, headers: answer.headers.filter((_, i) => i !== first) };
  });
}

/** An answer written by node:http (it says `Connection: keep-alive` on every keep-alive answer). */
function isNodeAnswer(answer: Answer | undefined): boolean {
  return answer?.headers?.some((line) => /^Connection: keep-alive$/.test(line)) ?? false;
}

/**
 * node:http's answers on a connection it is about to close: what a node
 * server says itself when it closes a keep-alive connection (`Connection:
 * close` in place of `Connection: keep-alive`, no `Keep-Alive`). Forwarded
 * answers to node:http clients may take this form; nothing else may differ.
 */
export function asClosing(reference: unknown[]): unknown[] {
  return reference.map((record) => {
    if (!isNodeAnswer(record as Answer)) return record;
    const answer = record as Answer;
    return {
      ...answer,
      headers: answer.headers.filter((line) => !/^Keep-Alive:/i.test(line)).map((line) =>
        /^Connection: keep-alive$/.test(line) ? "Connection: close" : line
      ),
    };
  });
}

/** A self-signed certificate for localhost (openssl), for the TLS half of the corpus. */
export async function makeCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const { success, stderr } = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
      "-days",
      "2",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!success) throw new Error(`openssl failed: ${new TextDecoder().decode(stderr)}`);
  return { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}
