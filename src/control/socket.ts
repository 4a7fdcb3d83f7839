/**
 * The control socket `.hotreload/<name>/control.sock` (mode 0600): a server in
 * the supervisor, a client for the CLI. The server only hands requests to the
 * supervisor's loop; the loop answers through `reply`.
 */
import { type ControlReply, type ControlRequest, parseRequest } from "./protocol.ts";

const encoder = new TextEncoder();
const MAX_REQUEST_BYTES = 1 << 20;

/** The socket's path inside an instance's runtime directory. */
export function socketPath(instanceDir: string): string {
  return `${instanceDir}/control.sock`;
}

/** Serves control requests until closed. */
export class ControlServer {
  readonly #listener: Deno.UnixListener;
  readonly #path: string;

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
    server.#accept(onRequest);
    return server;
  }

  async #accept(
    onRequest: (request: ControlRequest, reply: (reply: ControlReply) => void) => void,
  ): Promise<void> {
    try {
      for await (const conn of this.#listener) this.#serve(conn, onRequest);
    } catch { /* listener closed */ }
  }

  async #serve(
    conn: Deno.Conn,
    onRequest: (request: ControlRequest, reply: (reply: ControlReply) => void) => void,
  ): Promise<void> {
    const send = async (reply: ControlReply) => {
      try {
        await conn.write(encoder.encode(JSON.stringify(reply) + "\n"));
      } catch { /* the client went away */ }
      try {
        conn.close();
      } catch { /* already closed */ }
    };
    try {
      const line = await readLine(conn);
      onRequest(parseRequest(line), (reply) => void send(reply));
    } catch (error) {
      await send({ ok: false, error: (error as Error).message, code: 2 });
    }
  }

  close(): void {
    try {
      this.#listener.close();
    } catch { /* already closed */ }
    try {
      Deno.removeSync(this.#path);
    } catch { /* already gone */ }
  }
}

async function readLine(conn: Deno.Conn): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  while (!text.includes("\n")) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
    if (text.length > MAX_REQUEST_BYTES) throw new Error("control request too large");
  }
  return text.split("\n")[0];
}

/**
 * Sends one request and returns the reply, or undefined when no supervisor
 * answers on that socket (none there, or a stale file).
 */
export async function sendControlRequest(
  path: string,
  request: ControlRequest,
): Promise<ControlReply | undefined> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    return undefined;
  }
  try {
    await conn.write(encoder.encode(JSON.stringify(request) + "\n"));
    const line = await readLine(conn);
    return line === "" ? undefined : JSON.parse(line) as ControlReply;
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}
