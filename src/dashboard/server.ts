/**
 * The dashboard over HTTP: `/` (page.html), its own files (`/page.js`,
 * `/page.css`), and `/events`, a Server-Sent Events stream of
 * {@link DashboardUpdate}s, one `data:` line of JSON per event.
 *
 * It serves no port of its own: it answers requests the `--metrics` port's
 * minimal server (src/supervisor/metrics_server.ts) has read, which answers
 * one request per connection and closes the connection once its answer
 * settles. {@link DashboardServer.handle} takes that connection and the
 * request head already read; for `/events` it keeps the connection, and its
 * promise settles only when the page leaves or the server closes.
 *
 * Updates are pulled, not pushed: `snapshot()` is called only while a page is
 * connected, once when it connects and then at most once a second per page,
 * so with no page open the dashboard does nothing at all (no timer, no
 * sample of /proc). `hasClients()` tells a producer whether anyone looks.
 *
 * Guards, beyond the metrics server's own (connections, head size, time):
 * at most {@link MAX_EVENT_CLIENTS} pages at once, so scrapes always find a
 * free connection; a page that stops reading is dropped after
 * {@link STALLED_WRITE_MS} (one update is held per page, never a queue); and a
 * request whose Host header names neither an IP address, `localhost` nor the
 * bound host is refused (421): a web page elsewhere cannot rebind its own name
 * to 127.0.0.1 and read the dashboard through the browser (DNS rebinding).
 */
import type { DashboardUpdate } from "./contract.ts";
import { log } from "../log/mod.ts";

/** Event streams served at once; the metrics server serves 16 connections, scrapes included. */
export const MAX_EVENT_CLIENTS = 8;
/** The least time between two updates to one page. */
export const UPDATE_INTERVAL_MS = 1_000;
/** A page whose last update is still being written after this long is dropped. */
export const STALLED_WRITE_MS = 10_000;
/** How long a page's EventSource waits before it reconnects (the SSE `retry:` field). */
const RETRY_MS = 2_000;
/** A page sends nothing after its request: one that sends this much more is dropped. */
const MAX_UNREAD_BYTES = 64 * 1024;

/** The page's files, served as they are from this directory. */
const ASSETS: Record<string, { file: string; type: string }> = {
  "/": { file: "page.html", type: "text/html; charset=utf-8" },
  "/page.js": { file: "page.js", type: "text/javascript; charset=utf-8" },
  "/page.css": { file: "page.css", type: "text/css; charset=utf-8" },
};

/** The page loads its own files and nothing else: no inline script, no other origin. */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const COMMON_HEADERS = "cache-control: no-store\r\nx-content-type-options: nosniff\r\n" +
  "referrer-policy: no-referrer\r\nconnection: close\r\n";

const encoder = new TextEncoder();

/** What a DashboardServer serves, and how. */
export interface DashboardServerOptions {
  /**
   * The update to send now; called only while a page is connected. Undefined:
   * nothing to send yet (the page waits for the next).
   */
  snapshot: () => DashboardUpdate | undefined;
  /** The host the port is bound to: requests naming it in Host are answered too. */
  hostname?: string;
  /** Pages served at once (default MAX_EVENT_CLIENTS). */
  maxClients?: number;
  /** Least time between updates to one page (default UPDATE_INTERVAL_MS). */
  intervalMs?: number;
  /** Where the page's files are (default: this module's directory). */
  assets?: URL;
  /** Called when the last page has left: whatever was kept up for the pages can stop. */
  idle?: () => void;
}

/** One connected page. */
interface Client {
  conn: Deno.Conn;
  /** When it is due its next update (performance.now()). */
  nextAt: number;
  /** Since when its current write runs, or undefined when none does. */
  writingSince?: number;
  /** Settles handle()'s promise. */
  leave: () => void;
}

/** Serves the dashboard's page and its event stream on connections another server accepted. */
export class DashboardServer {
  readonly #options: DashboardServerOptions;
  readonly #clients = new Set<Client>();
  readonly #maxClients: number;
  readonly #intervalMs: number;
  readonly #assets: URL;
  #timer?: ReturnType<typeof setTimeout>;
  #closed = false;
  #snapshotFailed = false;

  constructor(options: DashboardServerOptions) {
    this.#options = options;
    this.#maxClients = options.maxClients ?? MAX_EVENT_CLIENTS;
    this.#intervalMs = options.intervalMs ?? UPDATE_INTERVAL_MS;
    this.#assets = options.assets ?? new URL("./", import.meta.url);
  }

  /** True while at least one page is connected to `/events`. */
  hasClients(): boolean {
    return this.#clients.size > 0;
  }

  /** True while a timer for the next update is set: only while a page is connected. */
  get scheduled(): boolean {
    return this.#timer !== undefined;
  }

  /** How many pages are connected. */
  get clients(): number {
    return this.#clients.size;
  }

  /**
   * Answers a request if its path is the dashboard's (`/`, `/page.js`,
   * `/page.css`, `/events`) and returns true; returns false at once, having
   * read and written nothing, for any other path. `head` is the request head
   * as read (request line and headers). For `/events` the promise settles when
   * the page has left or the server closed; the caller closes `conn` then.
   */
  async handle(conn: Deno.Conn, head: string): Promise<boolean> {
    const request = parseHead(head);
    if (!request || !(request.path in ASSETS || request.path === "/events")) return false;
    if (request.method !== "GET" && request.method !== "HEAD") {
      await respond(conn, 405, "text/plain; charset=utf-8", "the dashboard answers GET\n", {
        extra: "allow: GET, HEAD\r\n",
      });
      return true;
    }
    if (!hostAllowed(request.host, this.#options.hostname)) {
      await respond(
        conn,
        421,
        "text/plain; charset=utf-8",
        `the dashboard answers requests for this host by IP address or as localhost, not as ` +
          `"${request.host}" (a guard against DNS rebinding)\n`,
        { head: request.method === "HEAD" },
      );
      return true;
    }
    if (request.path === "/events") {
      await this.#stream(conn, request.method === "HEAD");
      return true;
    }
    await this.#asset(conn, ASSETS[request.path], request.method === "HEAD");
    return true;
  }

  /** Ends every event stream and serves none from now on. */
  close(): void {
    this.#closed = true;
    for (const client of [...this.#clients]) this.#drop(client);
    this.#disarm();
  }

  async #asset(
    conn: Deno.Conn,
    asset: { file: string; type: string },
    headOnly: boolean,
  ): Promise<void> {
    let body: Uint8Array;
    try {
      body = await Deno.readFile(new URL(asset.file, this.#assets));
    } catch (error) {
      const why = (error as Error).message.split("\n")[0];
      await respond(conn, 500, "text/plain; charset=utf-8", `cannot read ${asset.file}: ${why}\n`);
      return;
    }
    const extra = asset.file.endsWith(".html")
      ? `content-security-policy: ${CONTENT_SECURITY_POLICY}\r\n`
      : "";
    await respond(conn, 200, asset.type, body, { extra, head: headOnly });
  }

  async #stream(conn: Deno.Conn, headOnly: boolean): Promise<void> {
    if (this.#closed || this.#clients.size >= this.#maxClients) {
      await respond(
        conn,
        503,
        "text/plain; charset=utf-8",
        `${this.#maxClients} dashboard pages are open already; close one\n`,
        { extra: `retry-after: 10\r\n`, head: headOnly },
      );
      return;
    }
    const head = `HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n` +
      // A proxy in front (nginx) must not buffer the stream.
      `x-accel-buffering: no\r\n${COMMON_HEADERS}\r\n`;
    if (headOnly) {
      await writeAll(conn, encoder.encode(head));
      return;
    }
    await writeAll(conn, encoder.encode(`${head}retry: ${RETRY_MS}\n\n`));
    let leave!: () => void;
    const left = new Promise<void>((resolve) => leave = resolve);
    const client: Client = { conn, nextAt: performance.now(), leave };
    this.#clients.add(client);
    this.#watchForLeaving(client);
    this.#tick(); // its first update at once
    await left;
  }

  /** A page that closes its connection (EOF, reset) leaves at once, not at the next write. */
  async #watchForLeaving(client: Client): Promise<void> {
    const buffer = new Uint8Array(4096);
    let unread = 0;
    try {
      while (this.#clients.has(client)) {
        const n = await client.conn.read(buffer);
        if (n === null) break;
        unread += n;
        if (unread > MAX_UNREAD_BYTES) break;
      }
    } catch { /* reset, or closed by us */ }
    this.#drop(client);
  }

  /** Sends an update to every page that is due one, then waits for the next that will be. */
  #tick(): void {
    this.#disarm();
    if (this.#clients.size === 0) return;
    const now = performance.now();
    const due = [...this.#clients].filter((client) => client.nextAt <= now);
    if (due.length > 0) this.#send(due, now);
    this.#arm();
  }

  #send(due: Client[], now: number): void {
    let update: DashboardUpdate | undefined;
    try {
      update = this.#options.snapshot();
    } catch (error) {
      if (!this.#snapshotFailed) {
        this.#snapshotFailed = true;
        log.warn(
          "dashboard.snapshot-failed",
          `the dashboard's update could not be made (said once): ${(error as Error).message}`,
          { role: "supervisor" },
        );
      }
    }
    for (const client of due) client.nextAt = now + this.#intervalMs;
    if (update === undefined) return;
    // One message for every page: serialized once.
    const bytes = encoder.encode(`data: ${JSON.stringify(update)}\n\n`);
    for (const client of due) {
      if (client.writingSince !== undefined) {
        // Still writing the last one: this one is skipped (the next is whole anyway).
        if (now - client.writingSince > STALLED_WRITE_MS) this.#drop(client);
        continue;
      }
      client.writingSince = now;
      writeAll(client.conn, bytes).then(
        () => client.writingSince = undefined,
        () => this.#drop(client),
      );
    }
  }

  #arm(): void {
    if (this.#clients.size === 0) return;
    const next = Math.min(...[...this.#clients].map((client) => client.nextAt));
    const timer = setTimeout(() => this.#tick(), Math.max(0, next - performance.now()));
    // The page's pending read keeps the process up while it is connected, not this timer.
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #drop(client: Client): void {
    if (!this.#clients.delete(client)) return;
    try {
      client.conn.close();
    } catch { /* closed already */ }
    client.leave();
    if (this.#clients.size === 0) {
      this.#disarm();
      this.#options.idle?.();
    }
  }
}

/** The request line's method and path (query and fragment dropped), and the Host header. */
export function parseHead(
  head: string,
): { method: string; path: string; host: string | undefined } | undefined {
  const [requestLine, ...headers] = head.split(/\r?\n/);
  const [method, target] = requestLine.split(" ");
  if (!method || !target?.startsWith("/")) return undefined;
  const hostLine = headers.find((line) => /^host:/i.test(line));
  return {
    method,
    path: target.split(/[?#]/)[0],
    host: hostLine?.slice(hostLine.indexOf(":") + 1).trim(),
  };
}

/**
 * True when a request addressed to `host` (a Host header) may be answered:
 * no Host at all (HTTP/1.0; a browser always sends one), an IPv4 or IPv6
 * address, `localhost`, or the host the port is bound to. A browser sends the
 * name of the site it thinks it talks to, so a rebound name is refused.
 */
export function hostAllowed(host: string | undefined, bound?: string): boolean {
  if (host === undefined) return true;
  const name = (host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0])
    .toLowerCase();
  if (name === "localhost" || /^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return true;
  if (/^\[[0-9a-f:.]+\]$/.test(name)) return true;
  return bound !== undefined && name === bound.toLowerCase();
}

const REASONS: Record<number, string> = {
  200: "OK",
  405: "Method Not Allowed",
  421: "Misdirected Request",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

async function respond(
  conn: Deno.Conn,
  status: number,
  type: string,
  body: string | Uint8Array,
  { extra = "", head = false }: { extra?: string; head?: boolean } = {},
): Promise<void> {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const text = `HTTP/1.1 ${status} ${REASONS[status]}\r\ncontent-type: ${type}\r\n` +
    `content-length: ${bytes.length}\r\n${COMMON_HEADERS}${extra}\r\n`;
  await writeAll(conn, encoder.encode(text));
  if (!head) await writeAll(conn, bytes);
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}
