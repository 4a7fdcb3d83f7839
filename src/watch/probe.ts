/**
 * Stat probes for the poll backend.
 *
 * - `statx` (Linux x86_64/aarch64 with FFI allowed): libc `statx(2)` through
 *   `Deno.dlopen`, writing into one reused 256-byte buffer, so no JS object is
 *   built per file. Entries are looked up by their short name relative to an
 *   `O_PATH` descriptor of their directory, or, cheaper still, stat'ed through
 *   an `O_PATH` descriptor kept open for them (`hold`): no path lookup at all.
 *   Signature: inode, size, mtime and ctime with nanoseconds.
 * - `stat`: pure Deno (`Deno.statSync` on the full path); the fallback when
 *   FFI is unavailable. Signature: inode, size, mtime and ctime in ms.
 *
 * FFI is stable in Deno 2 (no `--unstable-ffi`); it needs `--allow-ffi`
 * (part of `-A`). Without it, `stat` is used.
 *
 * @module
 */

/**
 * Number of slots of a signature: inode (2), size (2), mtime (2), ctime (2).
 * statx fills them with 32-bit words (seconds and nanoseconds for times);
 * the pure-Deno prober puts whole numbers in the first slot of each pair
 * (times in ms) and 0 in the second.
 */
export const SIG_LEN = 8;

/** What an entry is, as returned by the stat calls. */
export const NONE = 0;
export const FILE = 1;
export const DIR = 2;

/** A path or name, encoded the way a prober wants it. */
export type Key = Uint8Array | string;

/**
 * Reads signatures (inode, size, mtime, ctime) into a Float64Array; handles
 * are directory descriptors (or 0 for the pure-Deno prober).
 */
export interface Prober {
  readonly name: "statx" | "stat";
  /** Whether `hold` can keep descriptors. */
  readonly canHold: boolean;
  /** Key of a directory opened by path. */
  dirKey(abs: string): Key;
  /** Key of an entry of a directory. */
  entryKey(dirAbs: string, name: string): Key;
  /** Open a directory by path and write its signature; -1 when gone or not a directory. */
  openDir(key: Key, sig: Float64Array): number;
  closeDir(handle: number): void;
  /** Stat an entry of an open directory (symlinks followed): NONE, FILE or DIR. */
  statAt(handle: number, key: Key, sig: Float64Array): number;
  /** Keep a descriptor for an entry of an open directory; -1 when not possible. */
  hold(handle: number, key: Key, dir: boolean): number;
  /** Keep a descriptor for a directory opened by path (its `dirKey`); -1 when not possible. */
  holdDir(key: Key): number;
  /** Stat a held descriptor: NONE once the entry has no link left (deleted). */
  statHeld(fd: number, sig: Float64Array): number;
  release(fd: number): void;
  /** The mtime in ms since the epoch from a signature this prober wrote. */
  mtimeMs(sig: Float64Array): number;
  /**
   * The ctime (last change, always set by the kernel) in ms since the epoch,
   * from a signature at `offset`; Infinity when this prober cannot tell.
   */
  ctimeMs(sigs: ArrayLike<number>, offset: number): number;
  /**
   * Stat the files of an open directory, each through its held descriptor
   * (`fds[i] >= 0`) or by its key; compare with and update `sigs`
   * (SIG_LEN slots per file). Indexes of files whose signature changed go
   * to `changed`, of files gone (or no longer regular files) to `gone`.
   */
  scanFiles(
    handle: number,
    fds: readonly number[],
    keys: readonly Key[],
    sigs: number[],
    changed: number[],
    gone: number[],
  ): void;
}

/** Copy `sig` into `sigs` at file `i`; true when it differed. */
export function storeSig(sigs: number[], i: number, sig: Float64Array): boolean {
  const o = i * SIG_LEN;
  let diff = false;
  for (let k = 0; k < SIG_LEN; k++) {
    if (sigs[o + k] !== sig[k]) {
      sigs[o + k] = sig[k];
      diff = true;
    }
  }
  return diff;
}

const encoder = new TextEncoder();

/** Pure Deno probe: `Deno.statSync` on full paths; holds nothing. */
export class StatProber implements Prober {
  readonly name = "stat" as const;
  readonly canHold = false;

  dirKey(abs: string): string {
    return abs;
  }

  entryKey(dirAbs: string, name: string): string {
    return dirAbs === "/" ? `/${name}` : `${dirAbs}/${name}`;
  }

  openDir(key: Key, sig: Float64Array): number {
    return this.statAt(0, key, sig) === DIR ? 0 : -1;
  }

  closeDir(_handle: number): void {}

  statAt(_handle: number, key: Key, sig: Float64Array): number {
    let st: Deno.FileInfo;
    try {
      st = Deno.statSync(key as string);
    } catch {
      return NONE;
    }
    sig[0] = st.ino ?? 0;
    sig[1] = 0;
    sig[2] = st.size;
    sig[3] = 0;
    sig[4] = st.mtime?.getTime() ?? 0;
    sig[5] = 0;
    sig[6] = st.ctime?.getTime() ?? 0;
    sig[7] = 0;
    return st.isFile ? FILE : st.isDirectory ? DIR : NONE;
  }

  readonly #sig = new Float64Array(SIG_LEN);

  scanFiles(
    _handle: number,
    _fds: readonly number[],
    keys: readonly Key[],
    sigs: number[],
    changed: number[],
    gone: number[],
  ): void {
    for (let i = 0; i < keys.length; i++) {
      if (this.statAt(0, keys[i], this.#sig) !== FILE) gone.push(i);
      else if (storeSig(sigs, i, this.#sig)) changed.push(i);
    }
  }

  hold(): number {
    return -1;
  }

  holdDir(): number {
    return -1;
  }

  statHeld(): number {
    return NONE;
  }

  release(): void {}

  mtimeMs(sig: Float64Array): number {
    return sig[4];
  }

  /**
   * Unknown: `Deno.statSync` gives ctime in whole seconds, far coarser than
   * a debounce, and mtime can be set into the past (tar, `cp -p`).
   */
  ctimeMs(_sigs: ArrayLike<number>, _offset: number): number {
    return Infinity;
  }
}

const SYMBOLS = {
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  openat: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

const AT_EMPTY_PATH = 0x1000;
// STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_MTIME | STATX_CTIME | STATX_INO | STATX_SIZE
const STATX_MASK = 0x1 | 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const O_PATH = 0o10000000;
const O_CLOEXEC = 0o2000000;

const MAX_HELD = 65_536;

/** How many descriptors all pollers of this process may keep open. */
function holdBudget(): number {
  try {
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = Number(line?.split(/\s+/)[3]);
    if (!Number.isFinite(soft)) return 0; // "unlimited" never happens for files
    // Leave the rest of the process plenty (a sixteenth of the limit, at least
    // 1024: Deno panics when it runs out of descriptors), and keep the kernel
    // memory bounded (65,536 descriptors, ~20 MB).
    return Math.min(MAX_HELD, Math.max(0, soft - Math.max(1024, Math.floor(soft / 16))));
  } catch {
    return 0;
  }
}

/** libc `statx` through FFI, relative to `O_PATH` descriptors. */
export class StatxProber implements Prober {
  readonly name = "statx" as const;
  readonly canHold = true;
  readonly #statx: (
    fd: number,
    path: Uint8Array,
    flags: number,
    mask: number,
    buf: Uint8Array,
  ) => number;
  readonly #open: (path: Uint8Array, flags: number) => number;
  readonly #openat: (fd: number, path: Uint8Array, flags: number) => number;
  readonly #close: (fd: number) => number;
  readonly #buf = new Uint8Array(256);
  readonly #u32 = new Uint32Array(this.#buf.buffer);
  readonly #empty = new Uint8Array(1);
  readonly #oDirectory: number;
  #held = 0;
  readonly #budget: number;

  private constructor(lib: Deno.DynamicLibrary<typeof SYMBOLS>, oDirectory: number) {
    const s = lib.symbols;
    this.#statx = s.statx;
    this.#open = s.open;
    this.#openat = s.openat;
    this.#close = s.close;
    this.#oDirectory = oDirectory;
    this.#budget = holdBudget();
  }

  static #shared: StatxProber | null | undefined;

  /** The process-wide instance, or null when FFI or statx is unavailable. */
  static load(): StatxProber | null {
    if (StatxProber.#shared !== undefined) return StatxProber.#shared;
    StatxProber.#shared = null;
    if (Deno.build.os !== "linux") return null;
    // O_DIRECTORY differs between architectures.
    const oDirectory = Deno.build.arch === "x86_64"
      ? 0o200000
      : Deno.build.arch === "aarch64"
      ? 0o40000
      : -1;
    if (oDirectory < 0) return null;
    try {
      if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return null;
      const lib = Deno.dlopen("libc.so.6", SYMBOLS);
      const p = new StatxProber(lib, oDirectory);
      // Self-test: "/" must come out as a directory with an inode.
      const sig = new Float64Array(SIG_LEN);
      const h = p.openDir(p.dirKey("/"), sig);
      if (h >= 0) p.closeDir(h);
      if (h < 0 || (sig[0] === 0 && sig[1] === 0)) {
        lib.close();
        return null;
      }
      StatxProber.#shared = p;
    } catch {
      StatxProber.#shared = null;
    }
    return StatxProber.#shared;
  }

  /** Descriptors currently held (all pollers of this process). */
  get held(): number {
    return this.#held;
  }

  dirKey(abs: string): Uint8Array {
    return encoder.encode(`${abs}\0`);
  }

  entryKey(_dirAbs: string, name: string): Uint8Array {
    return encoder.encode(`${name}\0`);
  }

  openDir(key: Key, sig: Float64Array): number {
    const fd = this.#open(key as Uint8Array, O_PATH | O_CLOEXEC | this.#oDirectory);
    if (fd < 0) return -1;
    if (
      this.#statx(fd, this.#empty, AT_EMPTY_PATH, STATX_MASK, this.#buf) !== 0 ||
      this.#read(sig) !== DIR
    ) {
      this.#close(fd);
      return -1;
    }
    return fd;
  }

  closeDir(handle: number): void {
    this.#close(handle);
  }

  statAt(handle: number, key: Key, sig: Float64Array): number {
    if (this.#statx(handle, key as Uint8Array, 0, STATX_MASK, this.#buf) !== 0) return NONE;
    return this.#read(sig);
  }

  hold(handle: number, key: Key, dir: boolean): number {
    if (this.#held >= this.#budget) return -1;
    const fd = this.#openat(
      handle,
      key as Uint8Array,
      O_PATH | O_CLOEXEC | (dir ? this.#oDirectory : 0),
    );
    if (fd >= 0) this.#held++;
    return fd;
  }

  holdDir(key: Key): number {
    if (this.#held >= this.#budget) return -1;
    const fd = this.#open(key as Uint8Array, O_PATH | O_CLOEXEC | this.#oDirectory);
    if (fd >= 0) this.#held++;
    return fd;
  }

  statHeld(fd: number, sig: Float64Array): number {
    if (this.#statx(fd, this.#empty, AT_EMPTY_PATH, STATX_MASK, this.#buf) !== 0) return NONE;
    if (this.#u32[4] === 0) return NONE; // stx_nlink: deleted
    return this.#read(sig);
  }

  release(fd: number): void {
    if (fd < 0) return;
    this.#close(fd);
    this.#held--;
  }

  mtimeMs(sig: Float64Array): number {
    return sig[4] * 1000 + sig[5] / 1e6;
  }

  ctimeMs(sigs: ArrayLike<number>, offset: number): number {
    return sigs[offset + 6] * 1000 + sigs[offset + 7] / 1e6;
  }

  scanFiles(
    handle: number,
    fds: readonly number[],
    keys: readonly Key[],
    sigs: number[],
    changed: number[],
    gone: number[],
  ): void {
    // The hot loop of a poll round: one statx per file, 32-bit words compared
    // in place, no allocation.
    const statx = this.#statx;
    const buf = this.#buf;
    const u = this.#u32;
    const empty = this.#empty;
    for (let i = 0, n = fds.length; i < n; i++) {
      const fd = fds[i];
      const r = fd >= 0
        ? statx(fd, empty, AT_EMPTY_PATH, STATX_MASK, buf)
        : statx(handle, keys[i] as Uint8Array, 0, STATX_MASK, buf);
      if (r !== 0 || (fd >= 0 && u[4] === 0) || (u[7] & S_IFMT) !== S_IFREG) {
        gone.push(i);
        continue;
      }
      const o = i * 8;
      if (
        sigs[o] !== u[8] || sigs[o + 1] !== u[9] || sigs[o + 2] !== u[10] ||
        sigs[o + 3] !== u[11] || sigs[o + 4] !== u[28] || sigs[o + 5] !== u[30] ||
        sigs[o + 6] !== u[24] || sigs[o + 7] !== u[26]
      ) {
        sigs[o] = u[8];
        sigs[o + 1] = u[9];
        sigs[o + 2] = u[10];
        sigs[o + 3] = u[11];
        sigs[o + 4] = u[28];
        sigs[o + 5] = u[30];
        sigs[o + 6] = u[24];
        sigs[o + 7] = u[26];
        changed.push(i);
      }
    }
  }

  #read(sig: Float64Array): number {
    // struct statx: stx_nlink @16, stx_mode @28 (u16), stx_ino @32, stx_size @40,
    // stx_ctime @96 {i64 sec, u32 nsec}, stx_mtime @112 {i64 sec, u32 nsec}.
    const u = this.#u32;
    sig[0] = u[8];
    sig[1] = u[9];
    sig[2] = u[10];
    sig[3] = u[11];
    sig[4] = u[28];
    sig[5] = u[30];
    sig[6] = u[24];
    sig[7] = u[26];
    const fmt = u[7] & S_IFMT;
    return fmt === S_IFREG ? FILE : fmt === S_IFDIR ? DIR : NONE;
  }
}

/** The cheapest prober available here (`statx` via FFI, else `Deno.statSync`). */
export function defaultProber(): Prober {
  return StatxProber.load() ?? new StatProber();
}
