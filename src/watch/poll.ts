/**
 * The poll backend: a periodic stat scan, for filesystems where inotify sees
 * nothing (network mounts, WSL) or when it cannot be used (limits), or when
 * the user forces it (`--poll <ms>`).
 *
 * How it stays cheap (measured by bench/watch.ts, see docs/benchmarks.md):
 * - Per file it keeps inode + size + mtime + ctime (nanoseconds with statx),
 *   so in-place edits, same-second edits and atomic saves (new inode) show.
 * - Directories are only read again when their own mtime/inode changed (an
 *   entry was added, removed or renamed); other rounds read no directory at
 *   all. A directory whose mtime is less than 2 s old is read again on the
 *   next round too ("racy" mtime, as git calls it), so a second change within
 *   the same timestamp tick is not missed.
 * - Stats go through libc `statx` via FFI into one reused buffer (probe.ts):
 *   no JS object per file. On a local filesystem each watched file and
 *   directory keeps an `O_PATH` descriptor (no read access, closed on exec,
 *   within a budget below RLIMIT_NOFILE) and is stat'ed through it, so a round
 *   does no path lookup at all; the kernel's name lookup is most of the cost
 *   of a stat here. Replacements (atomic saves, renames) always change the
 *   parent directory's mtime; the directory is then re-read and each name is
 *   looked up again, re-opening descriptors whose inode changed. Over budget,
 *   and on network/virtual filesystems (where descriptors could pin server
 *   state or block an unmount), entries are looked up by name relative to
 *   their directory's descriptor. Without FFI the same scan runs on
 *   `Deno.statSync`.
 * - Ignored directories (.git, node_modules, .hotreload, --ignore,
 *   .gitignore) are never read or stat'ed.
 * - A round yields to the event loop every ~15 ms so a big tree does not
 *   stall the supervisor; rounds start every `intervalMs` (drift-corrected).
 *
 * The first scan only builds the table. A round that finds changes is
 * followed by another one `debounceMs` later, and the batch goes out from the
 * first round that finds nothing new. A `.gitignore` change re-reads the rules
 * and rebuilds the table silently, keeping the old signatures so that no edit
 * made meanwhile is lost.
 *
 * @module
 */
import { ChangeSet } from "./batch.ts";
import type { ChangeKind } from "./types.ts";
import { type Context, entryKind, joinAbs, joinRel, readDirOrNull, type Root } from "./context.ts";
import { defaultProber, DIR, FILE, type Key, type Prober, SIG_LEN } from "./probe.ts";

const SLICE_MS = 15;
/** Directories modified this recently are read again on the next round. */
const RACY_MS = 2000;

class PFile {
  s0 = 0;
  s1 = 0;
  s2 = 0;
  s3 = 0;
  s4 = 0;
  s5 = 0;
  /** Held descriptor, or -1 (looked up by name). */
  fd = -1;
  constructor(
    readonly name: string,
    readonly rel: string,
    readonly key: Key,
    readonly link: boolean,
  ) {}

  /** Store `sig`; true when it differs from what was stored. */
  update(sig: Float64Array): boolean {
    if (
      this.s0 === sig[0] && this.s1 === sig[1] && this.s2 === sig[2] && this.s3 === sig[3] &&
      this.s4 === sig[4] && this.s5 === sig[5]
    ) return false;
    this.s0 = sig[0];
    this.s1 = sig[1];
    this.s2 = sig[2];
    this.s3 = sig[3];
    this.s4 = sig[4];
    this.s5 = sig[5];
    return true;
  }

  copyFrom(o: PFile): void {
    this.s0 = o.s0;
    this.s1 = o.s1;
    this.s2 = o.s2;
    this.s3 = o.s3;
    this.s4 = o.s4;
    this.s5 = o.s5;
  }
}

class PDir {
  ino = 0;
  mtS = 0;
  mtN = 0;
  /** Held descriptor, or -1 (opened by path each round; always so for roots). */
  fd = -1;
  files: PFile[] = [];
  names = new Set<string>();
  subdirs = new Map<string, PDir>();
  gitignore: PFile | null = null;
  recheck = false;
  alive = true;
  #key: Key | undefined;
  constructor(
    readonly abs: string,
    readonly rel: string,
    readonly only?: string,
  ) {}

  key(prober: Prober): Key {
    return this.#key ??= prober.dirKey(this.abs);
  }

  /** Store the directory signature; true when it differs. */
  update(sig: Float64Array): boolean {
    if (this.ino === sig[0] && this.mtS === sig[2] && this.mtN === sig[3]) return false;
    this.ino = sig[0];
    this.mtS = sig[2];
    this.mtN = sig[3];
    return true;
  }
}

interface PRoot {
  root: Root;
  dir: PDir | null;
}

/** Poll backend options beyond the shared context. */
export interface PollConfig {
  intervalMs: number;
  /** Override the stat probe (tests and the benchmark). */
  prober?: Prober;
  /** Keep `O_PATH` descriptors for entries (local filesystems only; default true). */
  holdFds?: boolean;
}

/** Poll backend; construct, then `start()` (the first scan). */
export class PollBackend {
  readonly #ctx: Context;
  readonly #interval: number;
  readonly #prober: Prober;
  readonly #canHold: boolean;
  #hold: boolean;
  readonly #sig = new Float64Array(SIG_LEN);
  readonly #changes = new ChangeSet();
  readonly #maxWait: number;
  #dirty = false;
  #burstStart = 0;
  readonly #roots: PRoot[];
  readonly #dirs = new Set<PDir>();
  #carry: Map<string, PFile> | null = null;
  #gitChanged = false;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | null = null;

  constructor(ctx: Context, config: PollConfig) {
    this.#ctx = ctx;
    this.#interval = config.intervalMs;
    this.#prober = config.prober ?? defaultProber();
    this.#canHold = (config.holdFds ?? true) && this.#prober.canHold;
    this.#hold = this.#canHold;
    this.#maxWait = Math.max(1000, ctx.debounceMs * 10);
    this.#roots = ctx.roots.map((root) => ({ root, dir: null }));
  }

  /** Which stat probe is in use ("statx" via FFI, or "stat"). */
  get prober(): "statx" | "stat" {
    return this.#prober.name;
  }

  /** Files in the table, and how many are stat'ed through a held descriptor. */
  get stats(): { files: number; dirs: number; heldFiles: number; heldDirs: number } {
    let files = 0;
    let heldFiles = 0;
    let heldDirs = 0;
    for (const d of this.#dirs) {
      files += d.files.length;
      if (d.fd >= 0) heldDirs++;
      for (const f of d.files) if (f.fd >= 0) heldFiles++;
    }
    return { files, dirs: this.#dirs.size, heldFiles, heldDirs };
  }

  /** First scan (builds the table, reports nothing), then start polling. */
  start(): void {
    this.#attachAll();
    this.#schedule(this.#interval);
  }

  /**
   * Scan every root, then hand out descriptors: directories first (a
   * directory by path costs an open, a full path walk and a close per round),
   * then files, until the budget is used up.
   */
  #attachAll(): void {
    this.#hold = false;
    try {
      for (const r of this.#roots) this.#attach(r, false);
    } finally {
      this.#hold = this.#canHold;
    }
    if (!this.#hold) return;
    const prober = this.#prober;
    const roots = new Set(this.#roots.map((r) => r.dir));
    for (const d of this.#dirs) {
      if (!roots.has(d) && d.fd < 0) d.fd = prober.holdDir(d.key(prober));
    }
    for (const d of this.#dirs) {
      if (d.files.length === 0) continue;
      const h = d.fd >= 0 ? d.fd : prober.openDir(d.key(prober), this.#sig);
      if (h < 0) continue;
      for (const f of d.files) if (!f.link && f.fd < 0) f.fd = prober.hold(h, f.key, false);
      if (d.fd < 0) prober.closeDir(h);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#round;
    for (const d of [...this.#dirs]) this.#drop(d, false);
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      const start = performance.now();
      this.#round = this.#scan().finally(() => {
        this.#round = null;
        this.#afterRound(start);
      });
    }, delayMs);
  }

  /**
   * The debounce of the poller: a round that found something is followed by
   * another one `debounceMs` later instead of a full interval later; the
   * batch goes out from the first round that finds nothing new (or once a
   * burst has lasted `maxWait`). A burst that straddles a round is one batch.
   */
  #afterRound(start: number): void {
    if (this.#closed) return;
    const now = performance.now();
    if (this.#dirty) {
      this.#dirty = false;
      if (this.#burstStart === 0) this.#burstStart = now;
      if (now - this.#burstStart < this.#maxWait) {
        this.#schedule(Math.max(1, this.#ctx.debounceMs));
        return;
      }
    }
    this.#burstStart = 0;
    if (this.#changes.size > 0) {
      const changes = this.#changes.take();
      if (changes.length > 0) this.#ctx.onBatch({ changes });
    }
    this.#schedule(Math.max(10, start + this.#interval - performance.now()));
  }

  async #scan(): Promise<void> {
    for (const r of this.#roots) if (r.dir === null) this.#attach(r, true);
    let sliceStart = performance.now();
    let n = 0;
    for (const d of this.#dirs) {
      if (!d.alive) continue;
      this.#scanDir(d);
      if ((++n & 31) === 0 && performance.now() - sliceStart > SLICE_MS) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        if (this.#closed) return;
        sliceStart = performance.now();
      }
    }
    if (this.#gitChanged) this.#rebuild();
  }

  /** One directory of a round (kept out of the async loop so it stays optimised). */
  #scanDir(d: PDir): void {
    const prober = this.#prober;
    const sig = this.#sig;
    let h = d.fd;
    if (h >= 0) {
      if (prober.statHeld(h, sig) !== DIR) return this.#drop(d, true);
    } else {
      h = prober.openDir(d.key(prober), sig);
      if (h < 0) return this.#drop(d, true);
    }
    const changed = d.update(sig);
    const recheck = d.recheck;
    d.recheck = changed || this.#recent(sig);
    if (changed || recheck) this.#reconcile(d, h, true);
    let gone: PFile[] | null = null;
    const files = d.files;
    for (let i = 0; i < files.length; i++) {
      const f = files[i];
      const kind = f.fd >= 0 ? prober.statHeld(f.fd, sig) : prober.statAt(h, f.key, sig);
      if (kind !== FILE) (gone ??= []).push(f);
      else if (f.update(sig)) this.#record(f.rel, "changed");
    }
    const gi = d.gitignore;
    if (gi !== null && (prober.statAt(h, gi.key, sig) !== FILE || gi.update(sig))) {
      this.#gitChanged = true;
    }
    if (d.fd < 0) prober.closeDir(h);
    if (gone !== null) { for (const f of gone) this.#removeFile(d, f, true); }
  }

  /**
   * A directory modified less than RACY_MS ago may change again within the
   * same timestamp tick, which its mtime would not show: read it again.
   */
  #recent(sig: Float64Array): boolean {
    return Date.now() - this.#prober.mtimeMs(sig) < RACY_MS;
  }

  #record(path: string, kind: ChangeKind): void {
    this.#changes.record(path, kind);
    this.#dirty = true;
  }

  /** Find a root's directory (always opened by path, so a replaced root shows). */
  #attach(r: PRoot, report: boolean): void {
    const d = new PDir(r.root.dirAbs, r.root.dirRel, r.root.only);
    if (this.#fill(d, report)) r.dir = d;
  }

  /**
   * Stat a new directory, read it and its subtree; false when it is not a
   * directory. With `parent`, the directory is an entry of that open
   * directory and may keep a descriptor.
   */
  #fill(d: PDir, report: boolean, parent?: { h: number; key: Key }): boolean {
    const prober = this.#prober;
    const sig = this.#sig;
    let h = -1;
    if (parent !== undefined && this.#hold) {
      const fd = prober.hold(parent.h, parent.key, true);
      if (fd >= 0) {
        if (prober.statHeld(fd, sig) !== DIR) {
          prober.release(fd);
          return false;
        }
        d.fd = h = fd;
      }
    }
    if (h < 0) {
      h = prober.openDir(d.key(prober), sig);
      if (h < 0) return false;
    }
    d.update(sig);
    d.recheck = this.#recent(sig);
    this.#dirs.add(d);
    this.#reconcile(d, h, report);
    if (d.fd < 0) prober.closeDir(h);
    return true;
  }

  #removeFile(d: PDir, f: PFile, report: boolean): void {
    if (!d.names.delete(f.name)) return;
    if (report) this.#record(f.rel, "removed");
    this.#prober.release(f.fd);
    f.fd = -1;
    d.files = d.files.filter((x) => x !== f);
  }

  /**
   * Re-read a directory: files that appeared or vanished, names that now
   * point to another inode (replaced), new subdirectories (descended into).
   */
  #reconcile(d: PDir, h: number, report: boolean): void {
    const entries = readDirOrNull(d.abs);
    if (entries === null) return; // gone meanwhile: the next round drops it
    const prober = this.#prober;
    const sig = this.#sig;
    const filter = this.#ctx.filter;
    const kinds = new Map<string, { kind: "file" | "dir" | null; link: boolean }>();
    for (const e of entries) {
      if (d.only !== undefined && e.name !== d.only) continue;
      kinds.set(e.name, { kind: entryKind(d.abs, e), link: e.isSymlink });
    }
    // Known files: still there, and still the same inode?
    for (const f of [...d.files]) {
      if (kinds.get(f.name)?.kind !== "file" || prober.statAt(h, f.key, sig) !== FILE) {
        this.#removeFile(d, f, report);
        continue;
      }
      if (f.fd >= 0 && sig[0] !== f.s0) {
        prober.release(f.fd);
        f.fd = prober.hold(h, f.key, false);
      }
      if (f.update(sig) && report) this.#record(f.rel, "changed");
    }
    // Known subdirectories: still there, and still the same directory?
    for (const [name, sub] of d.subdirs) {
      const same = kinds.get(name)?.kind === "dir" &&
        prober.statAt(h, prober.entryKey(d.abs, name), sig) === DIR && sig[0] === sub.ino;
      if (!same) {
        this.#drop(sub, true);
        d.subdirs.delete(name);
      }
    }
    if (d.gitignore !== null && kinds.get(".gitignore")?.kind !== "file") {
      d.gitignore = null;
      this.#gitChanged = true;
    }
    for (const [name, { kind, link }] of kinds) {
      if (kind === "file") {
        if (d.names.has(name)) continue;
        if (name === ".gitignore" && d.only === undefined && filter.usesGitignore) {
          if (d.gitignore === null) {
            const gi = this.#newFile(d, name, true);
            prober.statAt(h, gi.key, sig);
            gi.update(sig);
            d.gitignore = gi;
            if (report) this.#gitChanged = true;
          }
          continue;
        }
        if (d.only === undefined && !filter.acceptsChildFile(d.rel, name)) continue;
        const f = this.#newFile(d, name, link);
        if (prober.statAt(h, f.key, sig) !== FILE) continue;
        f.update(sig);
        const old = this.#carry?.get(f.rel);
        if (old !== undefined) f.copyFrom(old);
        // Symlinks are looked up by name: a descriptor would follow the old target.
        if (this.#hold && !link) f.fd = prober.hold(h, f.key, false);
        d.files.push(f);
        d.names.add(name);
        if (report) this.#record(f.rel, "added");
      } else if (kind === "dir" && d.only === undefined && !d.subdirs.has(name)) {
        if (filter.ignoredChildDir(d.rel, name)) continue;
        const sub = new PDir(joinAbs(d.abs, name), joinRel(d.rel, name));
        if (this.#fill(sub, report, { h, key: prober.entryKey(d.abs, name) })) {
          d.subdirs.set(name, sub);
        }
      }
    }
  }

  #newFile(d: PDir, name: string, link: boolean): PFile {
    return new PFile(name, joinRel(d.rel, name), this.#prober.entryKey(d.abs, name), link);
  }

  /** Forget a directory and its subtree (releasing descriptors), maybe reporting its files as removed. */
  #drop(d: PDir, report: boolean): void {
    if (!d.alive) return;
    d.alive = false;
    this.#dirs.delete(d);
    for (const f of d.files) {
      if (report) this.#record(f.rel, "removed");
      this.#prober.release(f.fd);
      f.fd = -1;
    }
    this.#prober.release(d.fd);
    d.fd = -1;
    if (d.gitignore !== null) this.#gitChanged = true;
    for (const sub of d.subdirs.values()) this.#drop(sub, report);
    for (const r of this.#roots) if (r.dir === d) r.dir = null;
  }

  /** A .gitignore changed: re-read the rules and rebuild the table without reporting. */
  #rebuild(): void {
    this.#gitChanged = false;
    this.#ctx.filter.invalidate();
    const carry = new Map<string, PFile>();
    for (const d of this.#dirs) for (const f of d.files) carry.set(f.rel, f);
    for (const d of [...this.#dirs]) this.#drop(d, false);
    this.#carry = carry;
    try {
      this.#attachAll();
    } finally {
      this.#carry = null;
      this.#gitChanged = false;
    }
  }
}
