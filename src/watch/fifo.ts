/**
 * Keeping Deno's file watcher from blocking on a FIFO.
 *
 * `Deno.watchFs` compares every path an event names with the watched paths
 * by opening both (the `same_file` crate: open, then fstat), and opening a
 * FIFO for reading waits until someone opens it for writing. So an event on
 * a FIFO in a watched directory (an env file replaced by one) stops Deno's
 * watcher thread for good: no later change is seen, and closing the watcher
 * waits on it.
 *
 * A FIFO the watcher knows of is therefore held open here, read and write,
 * without blocking (libc `open(O_RDWR | O_NONBLOCK)`, through FFI), for as
 * long as it is there: every open of it returns at once then. Nothing is
 * ever read from it or written to it. Known means: a file the watcher was
 * named (an env file, a `--watch` file), checked with the watched roots; a
 * FIFO created anywhere else in a watched directory still stops Deno's
 * watcher (docs/architecture.md, Watching).
 *
 * @module
 */

const O_RDWR = 0o2;
const O_NONBLOCK = 0o4000;
const O_CLOEXEC = 0o2000000;

const SYMBOLS = {
  open: { parameters: ["buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

/** The FIFOs held open, by absolute path. */
export class FifoGuard {
  #lib?: Deno.DynamicLibrary<typeof SYMBOLS> | null;
  readonly #held = new Map<string, { fd: number; ino: number | null }>();

  /** libc, opened on first use; null where it cannot be (then FIFOs are only reported). */
  #libc(): Deno.DynamicLibrary<typeof SYMBOLS> | null {
    if (this.#lib !== undefined) return this.#lib;
    try {
      this.#lib = Deno.build.os === "linux" ? Deno.dlopen("libc.so.6", SYMBOLS) : null;
    } catch {
      this.#lib = null;
    }
    return this.#lib;
  }

  /**
   * Holds `abs` open when it is a FIFO now, lets it go when it no longer is.
   * Returns true the first time a FIFO is held (for a one-time note).
   */
  check(abs: string): boolean {
    let info: Deno.FileInfo | undefined;
    try {
      info = Deno.lstatSync(abs);
    } catch { /* gone */ }
    const fifo = info?.isFifo === true;
    const held = this.#held.get(abs);
    // Another file now, or another FIFO (made again): the one held is not the one there.
    if (held !== undefined && (!fifo || held.ino !== info!.ino)) this.#release(abs, held.fd);
    if (!fifo || this.#held.has(abs)) return false;
    const lib = this.#libc();
    if (!lib) return false;
    const fd = lib.symbols.open(
      new TextEncoder().encode(`${abs}\0`),
      O_RDWR | O_NONBLOCK | O_CLOEXEC,
    );
    if (fd < 0) return false;
    this.#held.set(abs, { fd, ino: info!.ino });
    return true;
  }

  #release(abs: string, fd: number): void {
    this.#lib?.symbols.close(fd);
    this.#held.delete(abs);
  }

  /** Lets every FIFO go and closes libc. */
  close(): void {
    for (const [abs, { fd }] of this.#held) this.#release(abs, fd);
    this.#lib?.close();
    this.#lib = null;
  }
}
