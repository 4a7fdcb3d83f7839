/**
 * The events backend: `Deno.watchFs` (inotify on Linux), recursive.
 *
 * - Raw events only mark paths dirty; what happened is decided when the
 *   debounce fires, by looking at the disk: a file that exists and was known
 *   is "changed", one that exists and was not known is "added", a known one
 *   that is gone is "removed". That makes atomic saves (which arrive as
 *   rename events) and editors' temp-file dances come out right.
 * - A new (or moved-in) directory is walked when its event is handled, so
 *   files created before inotify had a watch on it are not missed.
 * - `access` events are inotify's close-after-write (reads report none): a
 *   burst whose every written file was closed (or renamed into place) goes
 *   out after the shorter settled quiet (batch.ts, SETTLED_SHARE).
 * - inotify stops silently when the watched directory itself is deleted; a
 *   cheap identity check (one stat per watched root every 250 ms, and at once
 *   after an event for the root itself) re-creates the OS watcher and
 *   reconciles the tree when a root disappears, reappears or is replaced.
 *
 * @module
 */
import { ChangeSet, Debounce } from "./batch.ts";
import { type Context, type Root, toRel, walkFiles } from "./context.ts";
import { FifoGuard } from "./fifo.ts";
import { NamedFiles } from "./named.ts";

/** The `Deno.watchFs` signature (injectable for tests). */
export type WatchFsFn = (
  paths: string | string[],
  options?: { recursive?: boolean },
) => Deno.FsWatcher;

const ROOT_CHECK_MS = 250;
const STRUCTURAL = 1;
const MODIFY = 2;

interface Pending {
  abs: string;
  flags: number;
}

/** True when `path` is `dir` or below it ("" is the project root, not what lies above it). */
function isUnder(path: string, dir: string): boolean {
  if (dir === "") return path !== ".." && !path.startsWith("../");
  return path === dir || path.startsWith(`${dir}/`);
}

function identity(abs: string): string {
  try {
    const st = Deno.statSync(abs);
    return st.isDirectory ? `${st.dev}:${st.ino}` : "not-a-directory";
  } catch {
    return "missing";
  }
}

/** Events backend; construct, then `start()` (throws when `Deno.watchFs` fails). */
export class EventsBackend {
  readonly #ctx: Context;
  readonly #watchFs: WatchFsFn;
  readonly #known = new Set<string>();
  readonly #knownDirs = new Set<string>();
  readonly #pending = new Map<string, Pending>();
  readonly #changes = new ChangeSet();
  /** Files of this burst written and not yet closed (absolute paths). */
  readonly #writing = new Set<string>();
  readonly #debounce: Debounce;
  readonly #dirRoots: string[];
  readonly #fileRoots = new Set<string>();
  readonly #fileRootRels = new Set<string>();
  #watchers: Deno.FsWatcher[] = [];
  #loops: Promise<void>[] = [];
  #ids = new Map<Root, string>();
  #dead = false;
  #closed = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #soon: ReturnType<typeof setTimeout> | undefined;
  /** Named files that are FIFOs, held open so that Deno's watcher never blocks on one (fifo.ts). */
  readonly #fifos = new FifoGuard();
  /** The named files: the file roots and the explicit files, absolute (set at start). */
  #namedPaths: string[] = [];
  /** Named files, looked at directly: Deno drops the events of a link to elsewhere (named.ts). */
  #named = new NamedFiles([]);

  constructor(
    ctx: Context,
    watchFs: WatchFsFn = Deno.watchFs,
    schedule?: (fn: () => void, ms: number) => ReturnType<typeof setTimeout>,
  ) {
    this.#ctx = ctx;
    this.#watchFs = watchFs;
    this.#debounce = new Debounce(ctx.debounceMs, () => this.#flush(), schedule);
    this.#dirRoots = ctx.roots.filter((r) => r.only === undefined).map((r) => r.abs);
    for (const r of ctx.roots) {
      if (r.only === undefined) continue;
      this.#fileRoots.add(r.abs);
      this.#fileRootRels.add(r.rel);
    }
  }

  /** Build the table of known files and start the OS watcher. */
  start(): void {
    for (const r of this.#ctx.roots) {
      if (r.only !== undefined) {
        try {
          if (Deno.statSync(r.abs).isFile) this.#known.add(r.rel);
        } catch { /* appears later */ }
      } else {
        this.#walkInto(r.abs, r.rel, this.#known);
      }
    }
    const explicit = this.#ctx.filter.explicitFiles().map((rel) => `${this.#ctx.rootAbs}/${rel}`);
    this.#namedPaths = [...new Set([...this.#fileRoots, ...explicit])];
    this.#guardFifos();
    this.#named = new NamedFiles(this.#namedPaths);
    this.#arm();
    this.#timer = setInterval(() => this.#checkRoots(), ROOT_CHECK_MS);
  }

  /** Holds the named files that are FIFOs (fifo.ts); says so once for each. */
  #guardFifos(): void {
    for (const abs of this.#namedPaths) {
      if (!this.#fifos.check(abs)) continue;
      this.#ctx.onNote?.(
        `${toRel(this.#ctx.rootAbs, abs)} is a FIFO, not a file: held open so that the file ` +
          `watcher does not wait on it (Deno's opens each changed file)`,
      );
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    clearTimeout(this.#soon);
    this.#debounce.cancel();
    for (const w of this.#watchers) this.#closeQuietly(w);
    this.#watchers = [];
    await Promise.allSettled(this.#loops);
    this.#fifos.close();
  }

  #walkInto(abs: string, rel: string, files: Set<string>, dirs?: Set<string>): void {
    walkFiles(this.#ctx.filter, abs, rel, (f) => files.add(f), (d) => {
      this.#knownDirs.add(d);
      dirs?.add(d);
    });
  }

  #closeQuietly(w: Deno.FsWatcher): void {
    try {
      w.close();
    } catch { /* already closed */ }
  }

  /** (Re)create the OS watchers over the roots that exist now; throws when watchFs fails. */
  #arm(): void {
    const ids = new Map<Root, string>();
    for (const r of this.#ctx.roots) ids.set(r, identity(r.dirAbs));
    const live = (r: Root) => ids.get(r) !== "missing" && ids.get(r) !== "not-a-directory";
    const rec = [...new Set(this.#ctx.roots.filter((r) => r.only === undefined && live(r)))]
      .map((r) => r.abs);
    const flat = [
      ...new Set(
        this.#ctx.roots.filter((r) => r.only !== undefined && live(r)).map((r) => r.dirAbs),
      ),
    ];
    const created: Deno.FsWatcher[] = [];
    try {
      if (rec.length > 0) created.push(this.#watchFs(rec, { recursive: true }));
      if (flat.length > 0) created.push(this.#watchFs(flat, { recursive: false }));
    } catch (err) {
      for (const w of created) this.#closeQuietly(w);
      throw err;
    }
    // The new watchers exist before the old ones close, so no event falls in a gap.
    const old = this.#watchers;
    this.#watchers = created;
    for (const w of old) this.#closeQuietly(w);
    this.#ids = ids;
    this.#dead = false;
    for (const w of created) this.#loops.push(this.#loop(w));
  }

  async #loop(w: Deno.FsWatcher): Promise<void> {
    try {
      for await (const ev of w) this.#onEvent(ev);
    } catch { /* the watcher died; re-armed below */ }
    // The next root check (within 250 ms) re-arms; not at once, so a watcher
    // that keeps ending cannot turn into a busy loop.
    if (!this.#closed && this.#watchers.includes(w)) this.#dead = true;
  }

  #checkSoon(): void {
    if (this.#closed || this.#soon !== undefined) return;
    this.#soon = setTimeout(() => {
      this.#soon = undefined;
      this.#checkRoots();
    }, 0);
  }

  #checkRoots(): void {
    if (this.#closed) return;
    this.#guardFifos();
    this.#checkNamed();
    const changed = this.#ctx.roots.filter((r) => identity(r.dirAbs) !== this.#ids.get(r));
    if (changed.length === 0 && !this.#dead) return;
    try {
      this.#arm();
    } catch {
      // Could not watch again (e.g. inotify limits); try again at the next check.
      this.#dead = true;
    }
    for (const r of changed) this.#mark(r.rel, r.abs, STRUCTURAL);
    if (changed.length > 0) this.#debounce.touch(this.#pending.size, true);
  }

  /** Marks the named files that changed with no event (named.ts), unless an event is pending. */
  #checkNamed(): void {
    const moved = this.#named.changed().filter((abs) =>
      !this.#pending.has(toRel(this.#ctx.rootAbs, abs))
    );
    for (const abs of moved) this.#mark(toRel(this.#ctx.rootAbs, abs), abs, STRUCTURAL);
    if (moved.length > 0) this.#debounce.touch(this.#pending.size, false, this.#writing.size === 0);
  }

  #underDirRoot(abs: string): boolean {
    for (const d of this.#dirRoots) {
      if (abs === d || abs.startsWith(d === "/" ? "/" : `${d}/`)) return true;
    }
    return false;
  }

  #onEvent(ev: Deno.FsEvent): void {
    if (this.#closed) return;
    if (ev.kind === "access") return this.#closedWrite(ev.paths);
    const flag = ev.kind === "modify" ? MODIFY : STRUCTURAL;
    // Written into (or made, to be written): open until its close-after-write. Renamed into
    // place or removed: whole, or gone.
    const open = ev.kind === "modify" || ev.kind === "create";
    let touched = false;
    // A removal, or a write in build output: a build's burst (batch.ts).
    let build = ev.kind === "remove";
    for (const abs of ev.paths) {
      if (this.#dirRoots.includes(abs)) {
        // An event for a watched directory itself (deleted, moved): check it now.
        this.#checkSoon();
        continue;
      }
      if (!this.#fileRoots.has(abs) && !this.#underDirRoot(abs)) continue;
      const rel = toRel(this.#ctx.rootAbs, abs);
      if (this.#relevant(rel, abs)) {
        this.#mark(rel, abs, flag);
        touched = true;
        build ||= this.#ctx.filter.isBuildOutput(rel);
        if (open) this.#writing.add(abs);
        else this.#writing.delete(abs);
      }
    }
    if (touched) this.#debounce.touch(this.#pending.size, build, this.#writing.size === 0);
  }

  /** A file written into was closed: once none of the burst is still open, it has settled. */
  #closedWrite(paths: string[]): void {
    let closed = false;
    for (const abs of paths) closed = this.#writing.delete(abs) || closed;
    if (!closed || this.#writing.size > 0 || !this.#debounce.pending) return;
    this.#debounce.touch(this.#pending.size, false, true);
  }

  #relevant(rel: string, abs: string): boolean {
    const filter = this.#ctx.filter;
    // A file named on its own stays watched after it is removed and made again.
    if (this.#fileRoots.has(abs) || filter.isExplicit(rel)) return true;
    const name = abs.slice(abs.lastIndexOf("/") + 1);
    if (name === ".gitignore" && filter.usesGitignore) {
      filter.invalidate();
      return false;
    }
    if (filter.ignoredAnyway(rel)) return false;
    if (filter.hasWatchedExtension(name) || this.#known.has(rel) || this.#knownDirs.has(rel)) {
      return true;
    }
    try {
      return Deno.statSync(abs).isDirectory; // a new directory, whatever its name
    } catch {
      return false;
    }
  }

  #mark(rel: string, abs: string, flag: number): void {
    const p = this.#pending.get(rel);
    if (p === undefined) this.#pending.set(rel, { abs, flags: flag });
    else p.flags |= flag;
  }

  #flush(): void {
    if (this.#closed) return;
    for (const [rel, p] of this.#pending) {
      this.#classify(rel, p.abs, p.flags);
      this.#named.seen(p.abs);
    }
    this.#pending.clear();
    // A writer still at work after the quiet marks its file open again with its next write.
    this.#writing.clear();
    const changes = this.#changes.take();
    if (changes.length > 0) this.#ctx.onBatch({ changes });
  }

  #classify(rel: string, abs: string, flags: number): void {
    let st: Deno.FileInfo | null;
    try {
      st = Deno.statSync(abs);
    } catch {
      st = null;
    }
    const known = this.#known;
    if (st?.isFile) {
      if (!this.#fileRoots.has(abs) && !this.#ctx.filter.acceptsFile(rel)) return;
      this.#changes.record(rel, known.has(rel) ? "changed" : "added");
      known.add(rel);
      return;
    }
    if (known.has(rel)) {
      this.#changes.record(rel, "removed");
      known.delete(rel);
    }
    if (st?.isDirectory) {
      if (this.#ctx.filter.ignoredDir(rel)) return;
      // A known directory with an event of its own was removed or moved, then
      // made again: its files are new, even those whose own events were lost
      // (inotify watches a new directory only some time after it appears).
      const replaced = this.#knownDirs.has(rel) && (flags & STRUCTURAL) !== 0;
      if (!this.#knownDirs.has(rel) || replaced) this.#reconcileDir(rel, abs, replaced);
    } else if (this.#knownDirs.has(rel)) {
      this.#removeUnder(rel);
    }
  }

  /**
   * Walk a directory that appeared, moved or was `replaced`: new files are
   * added (known ones changed, when it was replaced), vanished ones removed.
   */
  #reconcileDir(rel: string, abs: string, replaced: boolean): void {
    const found = new Set<string>();
    const dirs = new Set<string>();
    this.#walkInto(abs, rel, found, dirs);
    for (const f of found) {
      if (!this.#known.has(f)) {
        this.#changes.record(f, "added");
        this.#known.add(f);
      } else if (replaced) {
        this.#changes.record(f, "changed");
      }
    }
    this.#removeUnder(rel, found, dirs);
  }

  /** Forgets what was under `rel` and is not among the files and directories still there. */
  #removeUnder(rel: string, files = new Set<string>(), dirs = new Set<string>()): void {
    for (const k of this.#known) {
      if (isUnder(k, rel) && !files.has(k) && !this.#fileRootRels.has(k)) {
        this.#changes.record(k, "removed");
        this.#known.delete(k);
      }
    }
    for (const d of this.#knownDirs) {
      if (isUnder(d, rel) && !dirs.has(d)) this.#knownDirs.delete(d);
    }
  }
}
