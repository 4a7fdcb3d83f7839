/**
 * An accept loop for the supervisor's own servers (the control socket, the
 * metrics port), which any local user or scraper may connect to: at most
 * `max` connections at once (those beyond it are closed at once), and a
 * failed accept (EMFILE: out of descriptors) never ends the loop, or every
 * later request would hang: it waits a moment and accepts again.
 */
export async function acceptBounded(
  listener: Deno.Listener,
  { max, closed, serve }: {
    max: number;
    /** True once the server is closed: the loop ends. */
    closed: () => boolean;
    /** Answers one connection; the slot is free again when it settles. */
    serve: (conn: Deno.Conn) => Promise<void>;
  },
): Promise<void> {
  let open = 0;
  while (!closed()) {
    let conn: Deno.Conn;
    try {
      conn = await listener.accept();
    } catch {
      if (closed()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    if (open >= max) {
      closeQuietly(conn);
      continue;
    }
    open++;
    serve(conn).catch(() => {}).finally(() => {
      open--;
      closeQuietly(conn);
    });
  }
}

/** Closes a connection the other side may have closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}
