/**
 * The poll backend: a periodic stat scan, for filesystems where inotify sees
 * nothing (network mounts, WSL) or when it cannot be used (limits), or when
 * the user forces it (`--poll <ms>`).
 *
 * How it stays cheap. Measured by bench/watch.ts (docs/benchmarks.md) on
 * 20,000 files in 2,000 folders at a 1000 ms interval, 2-core VM: 3.1-3.5 %
 * of one core (31-35 ms per round, most of it the kernel touching each inode
 * cold), against 7.3-8.8 % for a plain `Deno.statSync` of every entry.
 * - Per file it keeps inode + size + mtime + ctime (nanoseconds with statx),
 *   so in-place edits, same-second edits and atomic saves (new inode) show.
 * - Directories are only read again when their own mtime/inode changed (an
 *   entry was added, removed or renamed); other rounds read no directory at
 *   all. A directory whose mtime is less than 2 s old is read again on the
 *   next round too ("racy" mtime, as git calls it), so a second change within
 *   the same timestamp tick is not missed.
 * - Stats go through libc `statx` via FFI into one reused buffer (probe.ts)
 *   and are compared word by word against per-directory parallel arrays: no
 *   JS object per file, no allocation per round.
 * - On a local filesystem each watched file and directory keeps an `O_PATH`
 *   descriptor (no read access, closed on exec, within a budget below
 *   RLIMIT_NOFILE) and is stat'ed through it, so a round does no path lookup
 *   at all: about 1.1-1.4 us per entry here, against about 2 us by name and
 *   3-4 us for `Deno.statSync` on the full path. Replacements (atomic saves,
 *   renames) always change the parent directory's mtime; the directory is
 *   then re-read and each name is looked up again, re-opening descriptors
 *   whose inode changed; a deleted entry shows as a link count of 0. Over
 *   budget, and on network/virtual filesystems (where descriptors could pin
 *   server state or block an unmount), entries are looked up by name relative
 *   to their directory's descriptor. Without FFI the same scan runs on
 *   `Deno.statSync`.
 * - Ignored directories (.git, node_modules, .hotreload, --ignore,
 *   .gitignore) are never read or stat'ed.
 * - A round yields to the event loop every ~15 ms so a big tree does not
 *   stall the supervisor; rounds start every `intervalMs` (drift-corrected).
 *
 * The first scan only builds the table. A round whose changes all happened
 * at least `debounceMs` before it started hands out its batch at once (the
 * entries' ctimes say when; only on local filesystems, where they come from
 * this machine's clock). Otherwise another round follows `debounceMs` later,
 * and the batch goes out from the first round that finds nothing new. A
 * `.gitignore` change re-reads the rules and rebuilds the table silently,
 * keeping the old signatures so that no edit made meanwhile is lost.
 *
 * @module
 */
import { ChangeSet, maxWaitFor, quietFor } from "./batch.ts";
import type { ChangeKind } from "./types.ts";
import { type Context, entryKind, joinAbs, joinRel, readDirOrNull, type Root } from "./context.ts";
import { defaultProber, DIR, FILE, type Key, type Prober, SIG_LEN, storeSig } from "./probe.ts";

const SLICE_MS = 15;
/** Directories modified this recently are read again on the next round. */
const RACY_MS = 2000;
/** File times come from a coarse kernel clock that lags `Date.now()` by up to a tick (4-10 ms). */
const TIMESTAMP_SLACK_MS = 20;

/** A watched directory; its files are kept as parallel arrays (cheap to scan). */
class PDir {
  ino0 = 0;
  ino1 = 0;
  mt0 = 0;
  mt1 = 0;
  /** Held descriptor, or -1 (opened by path each round; always so for roots). */
  fd = -1;
  /** File names, and per file: prober key, held descriptor (-1: by name), symlink?, signature. */
  names: string[] = [];
  keys: Key[] = [];
  fds: number[] = [];
  links: boolean[] = [];
  sigs: number[] = [];
  subdirs = new Map<string, PDir>();
  /** Key and signature of this directory's .gitignore, if any. */
  gitignore: { key: Key; sig: number[] } | null = null;
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

  /** Store the directory signature (inode, mtime); true when it differs. */
  update(sig: Float64Array): boolean {
    if (
      this.ino0 === sig[0] && this.ino1 === sig[1] && this.mt0 === sig[4] && this.mt1 === sig[5]
    ) {
      return false;
    }
    this.ino0 = sig[0];
    this.ino1 = sig[1];
    this.mt0 = sig[4];
    this.mt1 = sig[5];
    return true;
  }

  add(name: string, key: Key, fd: number, link: boolean, sig: ArrayLike<number>): void {
    this.names.push(name);
    this.keys.push(key);
    this.fds.push(fd);
    this.links.push(link);
    for (let k = 0; k < SIG_LEN; k++) this.sigs.push(sig[k]);
  }

  removeAt(i: number): void {
    this.names.splice(i, 1);
    this.keys.splice(i, 1);
    this.fds.splice(i, 1);
    this.links.splice(i, 1);
    this.sigs.splice(i * SIG_LEN, SIG_LEN);
  }
}

interface PRoot {
  root: Root;
  dir: PDir | null;
}

/** What the table holds, for tests and the benchmark. */
export interface PollStats {
  files: number;
  dirs: number;
  heldFiles: number;
  heldDirs: number;
  /** Rounds started since the first scan. */
  rounds: number;
}

/** Poll backend options beyond the shared context. */
export interface PollConfig {
  intervalMs: number;
  /** Override the stat probe (tests and the benchmark). */
  prober?: Prober;
  /** Keep `O_PATH` descriptors for entries (local filesystems only; default true). */
  holdFds?: boolean;
  /**
   * File ctimes come from this machine's clock (a local filesystem; default
   * true). Then a round whose changes are all older than the debounce hands
   * out its batch at once; otherwise a follow-up round must confirm it.
   */
  localClock?: boolean;
}

/** Poll backend; construct, then `start()` (the first scan). */
export class PollBackend {
  readonly #ctx: Context;
  readonly #interval: number;
  readonly #prober: Prober;
  readonly #canHold: boolean;
  #hold: boolean;
  readonly #localClock: boolean;
  readonly #sig = new Float64Array(SIG_LEN);
  readonly #changes = new ChangeSet();
  #dirty = false;
  #burstStart = 0;
  /** The pending batch removed a file or wrote build output (a build's quiet: batch.ts). */
  #build = false;
  /** Newest ctime (ms since the epoch) among the changes of the pending batch. */
  #newestChange = -Infinity;
  readonly #roots: PRoot[];
  readonly #dirs = new Set<PDir>();
  #carry: Map<string, number[]> | null = null;
  readonly #changedIdx: number[] = [];
  readonly #goneIdx: number[] = [];
  #gitChanged = false;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> | null = null;
  #roundsStarted = 0;

  constructor(ctx: Context, config: PollConfig) {
    this.#ctx = ctx;
    this.#interval = config.intervalMs;
    this.#prober = config.prober ?? defaultProber();
    this.#canHold = (config.holdFds ?? true) && this.#prober.canHold;
    this.#hold = this.#canHold;
    this.#localClock = config.localClock ?? true;
    this.#roots = ctx.roots.map((root) => ({ root, dir: null }));
  }

  /** Which stat probe is in use ("statx" via FFI, or "stat"). */
  get prober(): "statx" | "stat" {
    return this.#prober.name;
  }

  /**
   * Files in the table, how many are stat'ed through a held descriptor, and
   * how many rounds have started (the benchmark checks that a change is
   * caught by the first round after it).
   */
  get stats(): PollStats {
    let files = 0;
    let heldFiles = 0;
    let heldDirs = 0;
    for (const d of this.#dirs) {
      files += d.names.length;
      if (d.fd >= 0) heldDirs++;
      for (const fd of d.fds) if (fd >= 0) heldFiles++;
    }
    return { files, dirs: this.#dirs.size, heldFiles, heldDirs, rounds: this.#roundsStarted };
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
      if (d.names.length === 0) continue;
      const h = d.fd >= 0 ? d.fd : prober.openDir(d.key(prober), this.#sig);
      if (h < 0) continue;
      for (let i = 0; i < d.names.length; i++) {
        if (!d.links[i] && d.fds[i] < 0) d.fds[i] = prober.hold(h, d.keys[i], false);
      }
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
      this.#roundsStarted++;
      const start = performance.now();
      const startWall = Date.now();
      this.#round = this.#scan().finally(() => {
        this.#round = null;
        this.#afterRound(start, startWall);
      });
    }, delayMs);
  }

  /**
   * The debounce of the poller. A round whose changes were all at least
   * `debounceMs` old when it started saw a burst that had already ended: its
   * batch goes out at once. Otherwise the burst may still be going on (and
   * may have touched folders this round had already passed), so another
   * round follows `debounceMs` later instead of a full interval later, and
   * the batch goes out from the first round that finds nothing new (or once
   * a burst has lasted `maxWait`). A burst that straddles a round is one
   * batch either way. A build's burst (many paths) waits for a longer quiet,
   * and may last longer (batch.ts).
   */
  #afterRound(start: number, startWall: number): void {
    if (this.#closed) return;
    const now = performance.now();
    if (this.#dirty) {
      this.#dirty = false;
      if (this.#burstStart === 0) this.#burstStart = now;
      const paths = this.#changes.size;
      const quiet = quietFor(this.#ctx.debounceMs, paths, this.#build);
      if (
        !this.#endedBefore(startWall, quiet) &&
        now - this.#burstStart < maxWaitFor(this.#ctx.debounceMs, paths)
      ) {
        this.#schedule(Math.max(1, quiet));
        return;
      }
    }
    this.#burstStart = 0;
    this.#build = false;
    this.#newestChange = -Infinity;
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
    const changedIdx = this.#changedIdx;
    const goneIdx = this.#goneIdx;
    changedIdx.length = 0;
    goneIdx.length = 0;
    prober.scanFiles(h, d.fds, d.keys, d.sigs, changedIdx, goneIdx);
    for (const i of changedIdx) {
      this.#record(joinRel(d.rel, d.names[i]), "changed", prober.ctimeMs(d.sigs, i * SIG_LEN));
    }
    const gi = d.gitignore;
    if (gi !== null && (prober.statAt(h, gi.key, sig) !== FILE || storeSig(gi.sig, 0, sig))) {
      this.#gitChanged = true;
    }
    if (d.fd < 0) prober.closeDir(h);
    for (let k = goneIdx.length - 1; k >= 0; k--) this.#removeFile(d, goneIdx[k], true);
  }

  /**
   * A directory modified less than RACY_MS ago may change again within the
   * same timestamp tick, which its mtime would not show: read it again.
   */
  #recent(sig: Float64Array): boolean {
    return Date.now() - this.#prober.mtimeMs(sig) < RACY_MS;
  }

  /**
   * Whether the pending changes all happened `quietMs` before a round
   * that started at `roundWall` (ms since the epoch). Only trusted where
   * ctime comes from this clock; removals carry no time and never qualify.
   */
  #endedBefore(roundWall: number, quietMs: number): boolean {
    return this.#localClock &&
      this.#newestChange <= roundWall - quietMs - TIMESTAMP_SLACK_MS;
  }

  /** Note a change; `atMs` is when it happened (the entry's ctime), Infinity when unknown. */
  #record(path: string, kind: ChangeKind, atMs: number): void {
    this.#changes.record(path, kind);
    this.#dirty = true;
    if (kind === "removed" || this.#ctx.filter.isBuildOutput(path)) this.#build = true;
    if (atMs > this.#newestChange) this.#newestChange = atMs;
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

  #removeFile(d: PDir, i: number, report: boolean): void {
    if (report) this.#record(joinRel(d.rel, d.names[i]), "removed", Infinity);
    this.#prober.release(d.fds[i]);
    d.removeAt(i);
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
    for (let i = d.names.length - 1; i >= 0; i--) {
      if (kinds.get(d.names[i])?.kind !== "file" || prober.statAt(h, d.keys[i], sig) !== FILE) {
        this.#removeFile(d, i, report);
        continue;
      }
      const o = i * SIG_LEN;
      if (d.fds[i] >= 0 && (sig[0] !== d.sigs[o] || sig[1] !== d.sigs[o + 1])) {
        prober.release(d.fds[i]);
        d.fds[i] = prober.hold(h, d.keys[i], false);
      }
      if (storeSig(d.sigs, i, sig) && report) {
        this.#record(joinRel(d.rel, d.names[i]), "changed", prober.ctimeMs(sig, 0));
      }
    }
    // Known subdirectories: still there, and still the same directory?
    for (const [name, sub] of d.subdirs) {
      const same = kinds.get(name)?.kind === "dir" &&
        prober.statAt(h, prober.entryKey(d.abs, name), sig) === DIR && sig[0] === sub.ino0 &&
        sig[1] === sub.ino1;
      if (!same) {
        this.#drop(sub, true);
        d.subdirs.delete(name);
      }
    }
    if (d.gitignore !== null && kinds.get(".gitignore")?.kind !== "file") {
      d.gitignore = null;
      this.#gitChanged = true;
    }
    const present = new Set(d.names);
    for (const [name, { kind, link }] of kinds) {
      if (kind === "file") {
        if (present.has(name)) continue;
        if (name === ".gitignore" && d.only === undefined && filter.usesGitignore) {
          if (d.gitignore === null) {
            const key = prober.entryKey(d.abs, name);
            prober.statAt(h, key, sig);
            d.gitignore = { key, sig: Array.from(sig) };
            if (report) this.#gitChanged = true;
          }
          continue;
        }
        if (d.only === undefined && !filter.acceptsChildFile(d.rel, name)) continue;
        const key = prober.entryKey(d.abs, name);
        if (prober.statAt(h, key, sig) !== FILE) continue;
        const rel = joinRel(d.rel, name);
        // Symlinks are looked up by name: a descriptor would follow the old target.
        const fd = this.#hold && !link ? prober.hold(h, key, false) : -1;
        d.add(name, key, fd, link, this.#carry?.get(rel) ?? sig);
        if (report) this.#record(rel, "added", prober.ctimeMs(sig, 0));
      } else if (kind === "dir" && d.only === undefined && !d.subdirs.has(name)) {
        if (filter.ignoredChildDir(d.rel, name)) continue;
        const sub = new PDir(joinAbs(d.abs, name), joinRel(d.rel, name));
        if (this.#fill(sub, report, { h, key: prober.entryKey(d.abs, name) })) {
          d.subdirs.set(name, sub);
        }
      }
    }
  }

  /** Forget a directory and its subtree (releasing descriptors), maybe reporting its files as removed. */
  #drop(d: PDir, report: boolean): void {
    if (!d.alive) return;
    d.alive = false;
    this.#dirs.delete(d);
    for (let i = 0; i < d.names.length; i++) {
      if (report) this.#record(joinRel(d.rel, d.names[i]), "removed", Infinity);
      this.#prober.release(d.fds[i]);
      d.fds[i] = -1;
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
    const carry = new Map<string, number[]>();
    for (const d of this.#dirs) {
      for (let i = 0; i < d.names.length; i++) {
        carry.set(joinRel(d.rel, d.names[i]), d.sigs.slice(i * SIG_LEN, (i + 1) * SIG_LEN));
      }
    }
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
