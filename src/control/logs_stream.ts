/**
 * `hotreload logs` over the control socket. The request `{"cmd":"logs",
 * "lines":N,"follow":bool}` is answered by the socket server itself, never
 * by the supervisor's loop (a busy loop still shows its output): one line
 * `{"ok":true,"lines":[...]}` with the last N lines of the output buffer;
 * following, then one `{"line":"..."}` per new line, a `{"dropped":N}` when
 * the reader fell behind, and `{"end":"..."}` when the instance stops.
 *
 * A follower is bounded like the buffer: lines wait for a slow reader up to
 * {@link MAX_PENDING_BYTES}, then are dropped and counted; at most
 * {@link MAX_FOLLOWERS} follow at once, so that `status` always gets through.
 */
import type { OutputBuffer } from "../log/output_buffer.ts";
import { closeQuietly } from "./accept.ts";

/** Followers at once (the control socket serves 32 connections in all). */
export const MAX_FOLLOWERS = 8;
/** Bytes waiting for one slow follower before lines are dropped. */
export const MAX_PENDING_BYTES = 1024 * 1024;
/** Lines a `logs` request may ask for (the buffer keeps at most as many). */
export const MAX_LOG_LINES = 100_000;

const encoder = new TextEncoder();

/** One message of a `logs` answer, after the first reply line. */
export type LogsMessage = { line: string } | { dropped: number } | { end: string };

/** The followers of one control server, ended together when it closes. */
export class Followers {
  readonly #ends = new Set<(why: string) => void>();

  /** How many follow now. */
  get size(): number {
    return this.#ends.size;
  }

  /** Ends every follower with `why` as the last message. */
  endAll(why: string): void {
    for (const end of [...this.#ends]) end(why);
  }

  /** @internal */
  add(end: (why: string) => void): () => void {
    this.#ends.add(end);
    return () => this.#ends.delete(end);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/**
 * Answers a `logs` request on `conn` (already accepted) from `buffer`:
 * the last `lines`, then, when `follow`, every new line until the client
 * goes away or `followers` are ended. Never throws.
 */
export async function serveLogs(
  conn: Deno.Conn,
  request: { lines: number; follow?: boolean },
  buffer: OutputBuffer,
  followers: Followers,
): Promise<void> {
  const send = (message: unknown) => writeAll(conn, encoder.encode(JSON.stringify(message) + "\n"));
  if (request.follow && followers.size >= MAX_FOLLOWERS) {
    await send({
      ok: false,
      error: `${MAX_FOLLOWERS} clients already follow this instance's output; try again later`,
      kind: "failure",
    }).catch(() => {});
    return;
  }
  // Subscribed before the backlog is read: no line falls between the two.
  const pending: string[] = [];
  let pendingBytes = 0;
  let dropped = 0;
  let ended: string | undefined;
  let wake: (() => void) | undefined;
  const unsubscribe = request.follow
    ? buffer.subscribe((line) => {
      if (pendingBytes + line.length > MAX_PENDING_BYTES) {
        dropped++;
      } else {
        pending.push(line);
        pendingBytes += line.length;
      }
      wake?.();
    })
    : () => {};
  const end = (why: string) => {
    ended ??= why;
    wake?.();
  };
  const forget = request.follow ? followers.add(end) : () => {};
  try {
    await send({ ok: true, lines: buffer.lines(request.lines) });
    if (!request.follow) return;
    // The client never writes again: a read that ends means it went away.
    const gone = conn.read(new Uint8Array(1)).then(() => end("gone"), () => end("gone"));
    while (true) {
      if (pending.length > 0 || dropped > 0) {
        const lines = pending.splice(0);
        pendingBytes = 0;
        const lost = dropped;
        dropped = 0;
        let text = lost > 0 ? JSON.stringify({ dropped: lost }) + "\n" : "";
        for (const line of lines) text += JSON.stringify({ line }) + "\n";
        await writeAll(conn, encoder.encode(text));
        continue;
      }
      if (ended !== undefined) {
        if (ended !== "gone") await send({ end: ended });
        break;
      }
      await new Promise<void>((resolve) => wake = resolve);
      wake = undefined;
    }
    closeQuietly(conn);
    await gone;
  } catch {
    /* the client went away */
  } finally {
    unsubscribe();
    forget();
  }
}

/**
 * Reads JSON lines from `conn` until it closes (a `logs` answer, whose first
 * reply may be larger than a control reply may be), calling `onMessage`
 * with each.
 */
export async function readJsonLines(
  conn: Deno.Conn,
  onMessage: (message: Record<string, unknown>) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(64 * 1024);
  let text = "";
  while (true) {
    let n: number | null;
    try {
      n = await conn.read(buffer);
    } catch {
      n = null;
    }
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
    let at: number;
    while ((at = text.indexOf("\n")) !== -1) {
      const line = text.slice(0, at);
      text = text.slice(at + 1);
      if (line !== "") onMessage(JSON.parse(line));
    }
  }
}
