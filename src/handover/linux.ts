/**
 * The Linux calls steering needs, through libc (FFI, as src/watch/probe.ts
 * does): `bpf(2)` to create maps, load the program and edit the map;
 * `pidfd_open(2)` + `pidfd_getfd(2)` to take a duplicate of a worker's
 * socket; `getsockopt(SO_ACCEPTCONN)` and `getsockname(2)` to tell its
 * listener; `setsockopt(SO_ATTACH_REUSEPORT_EBPF)` to attach the program to
 * the reuseport group; `shutdown(2)` to stop a draining worker's listener
 * (release.ts); `close(2)`. Every call returns a result or
 * throws an {@link OsError} that names the call and the errno.
 *
 * @module
 */

/** A failed system call: `call` and the errno's name (EPERM, ENOENT…). */
export class OsError extends Error {
  constructor(readonly call: string, readonly errno: number) {
    super(`${call}: ${ERRNO_NAMES[errno] ?? `errno ${errno}`}`);
  }
}

const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  9: "EBADF",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  22: "EINVAL",
  24: "EMFILE",
  38: "ENOSYS",
  77: "EBADFD",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
};

/** bpf(2) takes its number per architecture; pidfd_* share theirs on every one. */
const SYS_BPF: Record<string, number> = { x86_64: 321, aarch64: 280 };
const SYS_PIDFD_OPEN = 434n;
const SYS_PIDFD_GETFD = 438n;
const SHUT_RD = 0;
const SOL_SOCKET = 1;
const SO_ACCEPTCONN = 30;
const SO_ATTACH_REUSEPORT_EBPF = 52;
const AF_INET = 2;
const AF_INET6 = 10;

const SYMBOLS = {
  bpf: { name: "syscall", parameters: ["i64", "i64", "buffer", "i64"], result: "i64" },
  pidfd_open: { name: "syscall", parameters: ["i64", "i64", "i64"], result: "i64" },
  pidfd_getfd: { name: "syscall", parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  __errno_location: { parameters: [], result: "pointer" },
} as const;

/** The address of a buffer, for a pointer field inside a bpf_attr. */
export function addressOf(buffer: Uint8Array<ArrayBuffer>): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buffer)));
}

/** A zeroed buffer of `size` bytes, off the V8 heap (its address stays put during a call). */
export function zeroed(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new ArrayBuffer(Math.max(size, 64)), 0, size);
}

/** libc, opened once; undefined off Linux or without FFI permission. */
export class Linux {
  readonly #lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  readonly #sysBpf: number;

  private constructor(lib: Deno.DynamicLibrary<typeof SYMBOLS>, sysBpf: number) {
    this.#lib = lib;
    this.#sysBpf = sysBpf;
  }

  /** Opens libc, or says why it cannot be used. */
  static open(): Linux | string {
    if (Deno.build.os !== "linux") return `not Linux (${Deno.build.os})`;
    const sysBpf = SYS_BPF[Deno.build.arch];
    if (sysBpf === undefined) return `no bpf(2) number known for ${Deno.build.arch}`;
    if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") {
      return "no FFI permission (--allow-ffi)";
    }
    try {
      return new Linux(Deno.dlopen("libc.so.6", SYMBOLS), sysBpf);
    } catch (error) {
      return `cannot open libc: ${(error as Error).message}`;
    }
  }

  #errno(): number {
    const pointer = this.#lib.symbols.__errno_location();
    return pointer === null ? 0 : new Deno.UnsafePointerView(pointer).getInt32();
  }

  #check(call: string, result: number | bigint): number {
    const value = Number(result);
    if (value < 0) throw new OsError(call, this.#errno());
    return value;
  }

  /** bpf(cmd, attr, size); `name` says which command, for errors. */
  bpf(name: string, cmd: number, attr: Uint8Array<ArrayBuffer>): number {
    return this.#check(
      `bpf(${name})`,
      this.#lib.symbols.bpf(BigInt(this.#sysBpf), BigInt(cmd), attr, BigInt(attr.length)),
    );
  }

  /** A pidfd for `pid` (close-on-exec). */
  pidfdOpen(pid: number): number {
    return this.#check("pidfd_open", this.#lib.symbols.pidfd_open(SYS_PIDFD_OPEN, BigInt(pid), 0n));
  }

  /** A duplicate (close-on-exec) of fd `target` of the process behind `pidfd`. */
  pidfdGetfd(pidfd: number, target: number): number {
    return this.#check(
      "pidfd_getfd",
      this.#lib.symbols.pidfd_getfd(SYS_PIDFD_GETFD, BigInt(pidfd), BigInt(target), 0n),
    );
  }

  /** Attaches the program `progFd` to the reuseport group of the socket `fd`. */
  attachReuseportProgram(fd: number, progFd: number): void {
    const value = zeroed(4);
    new DataView(value.buffer).setInt32(0, progFd, true);
    this.#check(
      "setsockopt(SO_ATTACH_REUSEPORT_EBPF)",
      this.#lib.symbols.setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, value, 4),
    );
  }

  /**
   * When the socket `fd` is a TCP/IP listener: its port and its address
   * (family and bytes, as a key that tells reuseport groups apart).
   */
  listener(fd: number): { port: number; address: string } | undefined {
    const value = zeroed(4);
    const length = zeroed(4);
    new DataView(length.buffer).setUint32(0, 4, true);
    const accepting = this.#lib.symbols.getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, value, length);
    if (accepting !== 0 || new DataView(value.buffer).getInt32(0, true) !== 1) return undefined;
    // struct sockaddr_in / sockaddr_in6: family (host order), port (network order), address.
    const address = zeroed(128);
    new DataView(length.buffer).setUint32(0, 128, true);
    if (this.#lib.symbols.getsockname(fd, address, length) !== 0) return undefined;
    const view = new DataView(address.buffer);
    const family = view.getUint16(0, true);
    if (family !== AF_INET && family !== AF_INET6) return undefined;
    const bytes = family === AF_INET ? address.subarray(4, 8) : address.subarray(8, 24);
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return { port: view.getUint16(2, false), address: `${family}:${hex}` };
  }

  /**
   * Stops the listening socket `fd` (SHUT_RD): it leaves its reuseport group
   * and takes no new connection, as if its owner had closed it, while the
   * connections it accepted are untouched; its owner's accept fails (EINVAL).
   */
  stopListening(fd: number): void {
    this.#check("shutdown(SHUT_RD)", this.#lib.symbols.shutdown(fd, SHUT_RD));
  }

  close(fd: number): void {
    this.#lib.symbols.close(fd);
  }

  unload(): void {
    this.#lib.close();
  }
}
