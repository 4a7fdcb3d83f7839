/**
 * The control socket `.hotreload/<name>/control.sock` (mode 0600): a server in
 * the supervisor, a client for the CLI. The server only hands requests to the
 * supervisor's loop; the loop answers through `reply`.
 */
import { acceptBounded, closeQuietly } from "./accept.ts";
import {
  CONTROL_READ_TIMEOUT_MS,
  MAX_CONTROL_CONNECTIONS,
  MAX_CONTROL_REQUEST_BYTES,
} from "../config/limits.ts";
import { ACCEPTED, type ControlReply, type ControlRequest, parseRequest } from "./protocol.ts";
import { CONTROL_SOCKET_FILE } from "./instance_dir.ts";
import { Followers, serveLogs } from "./logs_stream.ts";
import { supervisorOutput } from "../log/output_buffer.ts";

const encoder = new TextEncoder();

/** The socket's path inside an instance's runtime directory. */
export function socketPath(instanceDir: string): string {
  return `${instanceDir}/${CONTROL_SOCKET_FILE}`;
}

/** Serves control requests until closed. */
export class ControlServer {
  readonly #listener: Deno.UnixListener;
  readonly #path: string;
  #closed = false;
  readonly #followers = new Followers();

  private constructor(listener: Deno.UnixListener, path: string) {
    this.#listener = listener;
    this.#path = path;
  }

  /**
   * Listens on `path`, replacing a stale socket file left by a dead supervisor
   * (the caller has already made sure no live instance owns it).
   */
  static listen(
    path: string,
    onRequest: (request: ControlRequest, reply: (reply: ControlReply) => void) => void,
  ): ControlServer {
    try {
      Deno.removeSync(path);
    } catch { /* no stale socket */ }
    const listener = Deno.listen({ transport: "unix", path });
    Deno.chmodSync(path, 0o600);
    const server = new ControlServer(listener, path);
    acceptBounded(listener, {
      max: MAX_CONTROL_CONNECTIONS,
      closed: () => server.#closed,
      serve: (conn) => server.#serve(conn, onRequest),
    });
    return server;
  }

  async #serve(
    conn: Deno.Conn,
    onRequest: (request: ControlRequest, reply: (reply: ControlReply) => void) => void,
  ): Promise<void> {
    let done: () => void;
    const finished = new Promise<void>((resolve) => done = resolve);
    const send = async (reply: ControlReply) => {
      await writeLine(conn, JSON.stringify(reply));
      closeQuietly(conn);
      done();
    };
    let request: ControlRequest;
    try {
      request = parseRequest(await new LineReader(conn).next(CONTROL_READ_TIMEOUT_MS));
    } catch (error) {
      const why = error instanceof TimeoutError
        ? `no request line within ${error.ms} ms`
        : (error as Error).message;
      await send({ ok: false, error: why, kind: "usage" });
      return;
    }
    await writeLine(conn, ACCEPTED);
    // Answered here, not by the loop: a busy supervisor still shows its output.
    if (request.cmd === "logs") return serveLogs(conn, request, supervisorOutput, this.#followers);
    onRequest(request, (reply) => void send(reply));
    await finished;
  }

  close(): void {
    this.#closed = true;
    this.#followers.endAll("the instance's supervisor stopped");
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    try {
      Deno.removeSync(this.#path);
    } catch { /* already gone */ }
  }
}

async function writeLine(conn: Deno.Conn, line: string): Promise<void> {
  const bytes = encoder.encode(line + "\n");
  try {
    for (let written = 0; written < bytes.length;) {
      written += await conn.write(bytes.subarray(written));
    }
  } catch { /* the other side went away */ }
}

/** A control connection: reads line by line, each read bounded in time and size. */
class LineReader {
  readonly #decoder = new TextDecoder();
  readonly #buffer = new Uint8Array(16 * 1024);
  #text = "";

  constructor(readonly conn: Deno.Conn) {}

  /** The next line ("" at EOF); throws when it takes longer than `timeoutMs` or is too large. */
  async next(timeoutMs: number): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      if (timeoutMs !== Infinity) {
        timer = setTimeout(() => reject(new TimeoutError(timeoutMs)), timeoutMs);
      }
    });
    try {
      while (!this.#text.includes("\n")) {
        const n = await Promise.race([this.conn.read(this.#buffer), timeout]);
        if (n === null) break;
        this.#text += this.#decoder.decode(this.#buffer.subarray(0, n), { stream: true });
        if (this.#text.length > MAX_CONTROL_REQUEST_BYTES) {
          throw new Error("control request too large");
        }
      }
    } finally {
      clearTimeout(timer);
    }
    const at = this.#text.indexOf("\n");
    const line = at === -1 ? this.#text : this.#text.slice(0, at);
    this.#text = at === -1 ? "" : this.#text.slice(at + 1);
    return line;
  }
}

/** No reply came in time. */
export class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
    this.name = "TimeoutError";
  }
}

/** How long the CLI waits for a supervisor to accept a request (its loop may be wedged). */
export const ACCEPT_TIMEOUT_MS = 10_000;

/** What came back from a control request. */
export type ControlAnswer =
  | { kind: "reply"; reply: ControlReply }
  /** Nothing listens there (no socket, a stale file), or it hung up without a word. */
  | { kind: "none" }
  /** It did not accept, or did not reply, in time. */
  | { kind: "timeout"; ms: number };

/**
 * Sends one request and waits for the reply: at most {@link ACCEPT_TIMEOUT_MS}
 * for the supervisor to accept it, then at most `replyTimeoutMs` for the
 * result (Infinity for a reload, which takes as long as it takes).
 */
export async function sendControlRequest(
  path: string,
  request: ControlRequest,
  replyTimeoutMs = ACCEPT_TIMEOUT_MS,
): Promise<ControlAnswer> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return { kind: "none" };
  }
  const reader = new LineReader(conn);
  try {
    await writeLine(conn, JSON.stringify(request));
    let line = await reader.next(ACCEPT_TIMEOUT_MS);
    if (line === ACCEPTED) line = await reader.next(replyTimeoutMs);
    return line === "" ? { kind: "none" } : { kind: "reply", reply: JSON.parse(line) };
  } catch (error) {
    if (error instanceof TimeoutError) return { kind: "timeout", ms: error.ms };
    return { kind: "none" };
  } finally {
    closeQuietly(conn);
  }
}
