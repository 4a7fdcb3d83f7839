/**
 * systemd's notify protocol: when `NOTIFY_SOCKET` is set (a `Type=notify` or
 * `Type=notify-reload` unit), the supervisor sends `READY=1`, `RELOADING=1`,
 * `STOPPING=1`, `STATUS=...`, `MAINPID=` and `WATCHDOG=1` as datagrams to that
 * unix socket. No library: one `sendto` per message, through libc (FFI, which
 * the supervisor may use; Deno's own unix datagram sockets are unstable).
 * Without `NOTIFY_SOCKET` every call does nothing.
 */

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
/**
 * Never wait: a blocking sendto waits once the receiver's queue is full
 * (`net.unix.max_dgram_qlen`, 10 here), and a notify socket nobody reads
 * would wedge the supervisor's loop.
 */
const SOCK_NONBLOCK = 0o4000;
const MSG_DONTWAIT = 0x40;
const CLOCK_MONOTONIC = 1;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  close: { parameters: ["i32"], result: "i32" },
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
} as const;

import { log } from "../log/mod.ts";

/** The environment variables systemd sets for the notify protocol (children must not inherit them). */
export const NOTIFY_ENV = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/** A connection to systemd's notify socket. */
export class SdNotify {
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #fd: number;
  readonly #address: Uint8Array<ArrayBuffer>;
  /** Messages that could not be sent. */
  #dropped = 0;
  /** How often to send WATCHDOG=1 (half of WATCHDOG_USEC), or undefined. */
  readonly watchdogMs?: number;

  private constructor(lib: Deno.DynamicLibrary<typeof SYMBOLS>, fd: number, path: string) {
    this.#lib = lib;
    this.#fd = fd;
    // struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }; "@" means abstract.
    const name = new TextEncoder().encode(path.startsWith("@") ? `\0${path.slice(1)}` : path);
    this.#address = new Uint8Array(2 + name.length + (path.startsWith("@") ? 0 : 1));
    new DataView(this.#address.buffer).setUint16(0, AF_UNIX, true);
    this.#address.set(name, 2);
    const usec = Number(Deno.env.get("WATCHDOG_USEC"));
    const pid = Deno.env.get("WATCHDOG_PID");
    if (usec > 0 && (pid === undefined || Number(pid) === Deno.pid)) {
      this.watchdogMs = usec / 1000 / 2;
    }
  }

  /**
   * The notifier for `NOTIFY_SOCKET`, or undefined when it is not set (or
   * cannot be used: another OS, no FFI permission, a path too long).
   */
  static fromEnv(): SdNotify | undefined {
    const path = Deno.env.get("NOTIFY_SOCKET");
    if (!path || Deno.build.os !== "linux" || path.length > 107) return undefined;
    if (!path.startsWith("/") && !path.startsWith("@")) return undefined;
    try {
      if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return undefined;
      const lib = Deno.dlopen("libc.so.6", SYMBOLS);
      const fd = lib.symbols.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      if (fd < 0) {
        lib.close();
        return undefined;
      }
      return new SdNotify(lib, fd, path);
    } catch {
      return undefined;
    }
  }

  /**
   * Sends one datagram of `KEY=value` lines without ever waiting; false when
   * it could not be sent (the receiver's queue is full, or it is gone): it is
   * dropped, and the first drop is said once.
   */
  send(...lines: string[]): boolean {
    const bytes = new TextEncoder().encode(lines.join("\n"));
    const sent = this.#lib.symbols.sendto(
      this.#fd,
      bytes,
      BigInt(bytes.length),
      MSG_DONTWAIT,
      this.#address,
      this.#address.length,
    );
    const ok = Number(sent) === bytes.length;
    if (!ok && this.#dropped++ === 0) {
      log.warn(
        "supervisor.notify-dropped",
        `a message to systemd's NOTIFY_SOCKET could not be sent (nobody reads it, or it is gone); ` +
          `such messages are dropped, never waited for`,
        { role: "supervisor" },
      );
    }
    return ok;
  }

  /** CLOCK_MONOTONIC in microseconds, as `RELOADING=1` wants it in `MONOTONIC_USEC`. */
  monotonicUsec(): bigint {
    const timespec = new BigInt64Array(2);
    this.#lib.symbols.clock_gettime(CLOCK_MONOTONIC, timespec);
    return timespec[0] * 1_000_000n + timespec[1] / 1000n;
  }

  close(): void {
    this.#lib.symbols.close(this.#fd);
    this.#lib.close();
  }
}
