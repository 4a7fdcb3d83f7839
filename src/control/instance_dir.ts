/**
 * The runtime directory `.hotreload/<name>/` (mode 0700) in the directory a
 * supervisor runs from: its lock, pid file and the record that lets other
 * commands find it.
 *
 * The directory may be shared with other users, so nothing here is trusted:
 * a runtime directory that is a symbolic link, or is not owned by the user
 * running hotreload, is refused before anything in it is created, chmodded
 * or deleted; a record is acted on only when every field is sane and its pid
 * is still the process that wrote it (same start time). A record whose pid
 * is dead, or now belongs to another process, is stale: it is removed, never
 * signalled. An instance is claimed atomically with an exclusive lock held
 * for the supervisor's whole life.
 */
import { createHash } from "node:crypto";
import { HotreloadError } from "../errors.ts";
import { processEnv, processStartTime } from "../child/os.ts";
import { NAME } from "../config/limits.ts";

/** What a running supervisor records about itself. */
export interface InstanceRecord {
  name: string;
  pid: number;
  /** Kernel start time of the supervisor process; guards against pid reuse. */
  startTime: number;
  cwd: string;
  entry: string;
  workers: number;
  port?: number;
  graceMs: number;
  startedAt: string;
  /** hotreload's version (absent in records of versions before takeover). */
  version?: string;
  /**
   * The secret that marks requests the instance's workers send on to each
   * other (runtime/hop.ts); a successor keeps it, so that the workers it takes
   * over are believed (absent in records of older versions).
   */
  hopKey?: string;
}

/**
 * The variable in every worker's environment that names its instance: a
 * successor adopts (signals) a recorded worker only when it carries its
 * instance's token, never just because a pid and start time match.
 */
export const INSTANCE_ENV = "HOTRELOAD_INSTANCE";

/** The instance's token (in its workers' environment): derived from its hop secret, never the secret. */
export function instanceToken(hopKey: string): string {
  return createHash("sha256").update(`hotreload instance ${hopKey}`).digest("hex").slice(0, 32);
}

/** A new instance's hop secret: 128 random bits, in hex. */
export function newHopKey(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (byte) => byte.toString(16).padStart(2, "0"),
  ).join("");
}

/** An instance found under `.hotreload/`. */
export type FoundInstance =
  | { name: string; dir: string; record: InstanceRecord; state: "running" | "stale" }
  /** A record that is not sane (forged, or half-written by hand): never acted on. */
  | { name: string; dir: string; record?: undefined; state: "invalid" };

const RECORD_FILE = "instance.json";
const PID_FILE = "supervisor.pid";
const LOCK_FILE = "lock";
/** The supervisor's live workers (pid and start time), rewritten as they change. */
const WORKERS_FILE = "workers.json";

/** A process recorded by pid and kernel start time (a pid alone may have been reused). */
export interface RecordedProcess {
  pid: number;
  startTime: number;
}

/** Records the supervisor's live workers, so that a successor can find them if it dies. */
export function writeWorkers(dir: string, workers: RecordedProcess[]): void {
  writeFileAtomic(`${dir}/${WORKERS_FILE}`, JSON.stringify(workers) + "\n");
}

/**
 * A `run --takeover` under way: the new supervisor and its workers, written
 * from its start (each worker before it can serve), since the instance's
 * record and workers.json are still the old supervisor's. If the new
 * supervisor dies before it has the name, a successor adopts its workers from here.
 */
export interface TakeoverRecord extends RecordedProcess {
  hopKey?: string;
  version?: string;
  workers: RecordedProcess[];
}

/** A takeover's record file: one per supervisor (a takeover of a dead takeover keeps the first). */
const takeoverRecordFile = (dir: string, pid: number) => `${dir}/takeover-${pid}.json`;

/** Records a takeover under way (see TakeoverRecord), in this supervisor's file. */
export function writeTakeoverRecord(dir: string, record: TakeoverRecord): void {
  writeFileAtomic(takeoverRecordFile(dir, record.pid), JSON.stringify(record) + "\n");
}

/** Removes this process's takeover record (it has the name now, or stops). */
export function removeTakeoverRecord(dir: string, pid = Deno.pid): void {
  removeOwnFile(takeoverRecordFile(dir, pid));
}

/** The takeover records in `dir` whose supervisor has died. */
function deadTakeoverRecords(dir: string): TakeoverRecord[] {
  let names: string[];
  try {
    names = [...Deno.readDirSync(dir)].filter((e) => e.isFile).map((e) => e.name);
  } catch {
    return [];
  }
  return names.flatMap((name) => {
    const pid = Number(/^takeover-(\d+)\.json$/.exec(name)?.[1]);
    const record = pid ? readTakeoverRecord(takeoverRecordFile(dir, pid)) : undefined;
    return record && record.pid === pid && processStartTime(pid) !== record.startTime
      ? [record]
      : [];
  });
}

/** A takeover record, when it is sane; its workers as recorded (not checked). */
function readTakeoverRecord(path: string): TakeoverRecord | undefined {
  let raw: Record<string, unknown>;
  try {
    if (!Deno.lstatSync(path).isFile) return undefined;
    raw = JSON.parse(Deno.readTextFileSync(path));
  } catch {
    return undefined;
  }
  const sane = typeof raw === "object" && raw !== null && isWhole(raw.pid, 2, 2 ** 22) &&
    isWhole(raw.startTime, 1) && Array.isArray(raw.workers) &&
    (raw.hopKey === undefined ||
      typeof raw.hopKey === "string" && /^[0-9a-f]{32}$/.test(raw.hopKey)) &&
    (raw.version === undefined || typeof raw.version === "string" && raw.version.length <= 64);
  return sane ? raw as unknown as TakeoverRecord : undefined;
}

/**
 * The workers recorded in `dir` that are still the processes recorded (same
 * pid, same start time: a pid alone may have been given to anyone since)
 * and, when the record names its instance (`hopKey`), that carry its token
 * in their environment: a forged or stale list names no other process.
 */
export function recordedWorkers(dir: string, hopKey?: string): RecordedProcess[] {
  let raw: unknown;
  try {
    if (!Deno.lstatSync(`${dir}/${WORKERS_FILE}`).isFile) return [];
    raw = JSON.parse(Deno.readTextFileSync(`${dir}/${WORKERS_FILE}`));
  } catch {
    return [];
  }
  return liveWorkers(raw, hopKey);
}

/** The entries of `raw` that are still the processes recorded, and workers of the instance. */
function liveWorkers(raw: unknown, hopKey: string | undefined): RecordedProcess[] {
  if (!Array.isArray(raw)) return [];
  const token = hopKey === undefined ? undefined : instanceToken(hopKey);
  // A record of an older version names no token: a hotreload worker's variables at least.
  const ours = (pid: number) =>
    token === undefined
      ? processEnv(pid, "HOTRELOAD_WORKER_ID") !== undefined
      : processEnv(pid, INSTANCE_ENV) === token;
  return raw.filter((entry): entry is RecordedProcess =>
    isWhole(entry?.pid, 2) && isWhole(entry?.startTime, 1) &&
    processStartTime(entry.pid) === entry.startTime && ours(entry.pid)
  );
}

/**
 * Workers a dead supervisor left serving in `dir` (orphans waiting for a
 * successor), with that supervisor's pid and version. Nothing when its
 * supervisor lives, or when the record is not sane.
 */
export function orphansOf(
  dir: string,
):
  | { supervisor: number; version?: string; hopKey?: string; workers: RecordedProcess[] }
  | undefined {
  const record = readRecord(dir);
  // A takeover's supervisor that died before it had the name left its workers recorded apart.
  const takeovers = deadTakeoverRecords(dir);
  const deadRecord = typeof record === "object" && !isLive(record) ? record : undefined;
  const found = [
    ...(deadRecord ? recordedWorkers(dir, deadRecord.hopKey) : []),
    ...takeovers.flatMap((takeover) => liveWorkers(takeover.workers, takeover.hopKey)),
  ];
  const workers = found.filter((w, i) => found.findIndex((x) => x.pid === w.pid) === i);
  const dead = deadRecord ?? takeovers[0];
  if (!dead || workers.length === 0) return undefined;
  return {
    supervisor: dead.pid,
    version: dead.version,
    // Their workers all carry one secret: a takeover keeps its predecessor's.
    hopKey: dead.hopKey ?? takeovers.find((takeover) => takeover.hopKey)?.hopKey,
    workers,
  };
}

/** The record of the live supervisor of `dir`, if one runs (for a takeover). */
export function runningInstance(dir: string): InstanceRecord | undefined {
  const record = readRecord(dir);
  return typeof record === "object" && isLive(record) ? record : undefined;
}

/** `.hotreload/` under `cwd`. */
export function runtimeRoot(cwd: string): string {
  return `${cwd}/.hotreload`;
}

/** `.hotreload/<name>/` under `cwd`. */
export function instanceDir(cwd: string, name: string): string {
  return `${runtimeRoot(cwd)}/${name}`;
}

const isWhole = (value: unknown, min: number, max = Number.MAX_SAFE_INTEGER) =>
  Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;

/**
 * Returns `raw` as a record only when every field is sane: a pid above 1 (0
 * and -1 would signal a whole group, or every process), a numeric start
 * time, and numbers that commands compute with.
 */
export function checkRecord(raw: unknown): InstanceRecord | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const r = raw as Record<string, unknown>;
  const ok = typeof r.name === "string" && NAME.test(r.name) &&
    isWhole(r.pid, 2, 2 ** 22) && isWhole(r.startTime, 1) &&
    typeof r.cwd === "string" && typeof r.entry === "string" &&
    isWhole(r.workers, 1, 1_000_000) && (r.port === undefined || isWhole(r.port, 1, 65535)) &&
    isWhole(r.graceMs, 0, 2 ** 31 - 1) &&
    typeof r.startedAt === "string" &&
    (r.version === undefined ||
      typeof r.version === "string" && /^[\w.+-]{1,64}$/.test(r.version)) &&
    (r.hopKey === undefined || typeof r.hopKey === "string" && /^[0-9a-f]{32}$/.test(r.hopKey));
  return ok ? r as unknown as InstanceRecord : undefined;
}

/** The record in `dir`: undefined when there is none, "invalid" when it is not sane. */
function readRecord(dir: string): InstanceRecord | "invalid" | undefined {
  let text: string;
  try {
    if (!Deno.lstatSync(`${dir}/${RECORD_FILE}`).isFile) return "invalid";
    text = Deno.readTextFileSync(`${dir}/${RECORD_FILE}`);
  } catch {
    return undefined;
  }
  try {
    return checkRecord(JSON.parse(text)) ?? "invalid";
  } catch {
    return "invalid";
  }
}

/** True when the recorded supervisor is still the process that wrote the record. */
export function isLive(record: InstanceRecord): boolean {
  return checkRecord(record) !== undefined && processStartTime(record.pid) === record.startTime;
}

/** Why a record is stale, truthfully: its pid is gone, or now belongs to another process. */
export function whyStale(record: InstanceRecord): string {
  return processStartTime(record.pid) === undefined
    ? `pid ${record.pid} is gone`
    : `pid ${record.pid} now belongs to another process`;
}

/** A one-line error for a failed file operation on the runtime directory. */
function fsError(what: string, path: string, error: unknown): HotreloadError {
  const reason = error instanceof Deno.errors.PermissionDenied
    ? "permission denied (is the directory read-only?)"
    : (error as Error).message.split("\n")[0].replace(/, (open|mkdir|rename|write)\b.*$/, "");
  return new HotreloadError(`cannot ${what} ${path}: ${reason}`);
}

/**
 * Refuses `path` unless it is a real directory (not a symbolic link) owned by
 * the current user. Never follows a link: lstat, not stat.
 */
function checkOwnDir(path: string): void {
  const info = Deno.lstatSync(path);
  if (info.isSymlink) {
    throw new HotreloadError(
      `${path} is a symbolic link; hotreload never follows links in its runtime directory: remove it`,
    );
  }
  if (!info.isDirectory) throw new HotreloadError(`${path} is not a directory; remove it`);
  const uid = Deno.uid();
  if (uid !== null && info.uid !== uid) {
    throw new HotreloadError(
      `${path} belongs to uid ${info.uid}, not to you (uid ${uid}); refusing to use it: ` +
        `remove it, or run from a directory of your own`,
    );
  }
}

/** Creates `path` (mode 0700) or checks the one there; true when this call created it. */
function makePrivateDir(path: string): boolean {
  let created = false;
  try {
    Deno.mkdirSync(path, { mode: 0o700 });
    created = true;
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw fsError("create", path, error);
  }
  checkOwnDir(path);
  // Checked above: a real directory of ours, so chmod cannot reach through a link.
  if (!created && (Deno.lstatSync(path).mode! & 0o777) !== 0o700) Deno.chmodSync(path, 0o700);
  return created;
}

/** Writes a file by write-then-rename: a reader never sees half of it, and a link is replaced, never followed. */
function writeFileAtomic(path: string, text: string): void {
  const temporary = `${path}.${Deno.pid}.tmp`;
  try {
    Deno.writeTextFileSync(temporary, text, { mode: 0o600, createNew: true });
    Deno.renameSync(temporary, path);
  } catch (error) {
    try {
      Deno.removeSync(temporary);
    } catch { /* never written */ }
    throw fsError("write", path, error);
  }
}

/** Removes `path` when it is a regular file or socket (never through a link). */
function removeOwnFile(path: string): void {
  try {
    const info = Deno.lstatSync(path);
    if (info.isFile || info.isSocket) Deno.removeSync(path);
  } catch { /* already gone */ }
}

/** A claimed instance: its directory and record, and the lock held for its life. */
export interface Claim {
  dir: string;
  record: InstanceRecord;
  /** Releases the claim: removes what the claim created, then the lock. */
  release(): void;
}

/**
 * Opens and locks the lock file `path` (`.hotreload/<name>/lock`, or the
 * takeover's). Undefined when another process holds it. The file is checked
 * to be the one at the path after locking: whoever releases a lock unlinks
 * it, and a lock on an unlinked file proves nothing.
 */
function lockFile(path: string): Deno.FsFile | undefined {
  for (let attempt = 0; attempt < 5; attempt++) {
    let file: Deno.FsFile;
    try {
      const existing = Deno.lstatSync(path);
      if (!existing.isFile) throw new HotreloadError(`${path} is not a regular file; remove it`);
    } catch (error) {
      if (error instanceof HotreloadError) throw error;
    }
    try {
      file = Deno.openSync(path, { read: true, write: true, create: true, mode: 0o600 });
    } catch (error) {
      throw fsError("create", path, error);
    }
    if (!file.tryLockSync(true)) {
      file.close();
      return undefined;
    }
    try {
      if (Deno.lstatSync(path).ino === file.statSync().ino) return file;
    } catch { /* unlinked meanwhile */ }
    file.close();
  }
  return undefined;
}

/** The supervisor's control socket (control/socket.ts serves it). */
export const CONTROL_SOCKET_FILE = "control.sock";
/** Held by the one `run --takeover` under way for an instance. */
const TAKEOVER_LOCK_FILE = "takeover.lock";
/** The control socket of a supervisor taking over, until it has the name. */
export const TAKEOVER_SOCKET_FILE = "takeover.sock";

/**
 * Locks `.hotreload/<name>/takeover.lock` for a `run --takeover`, so that two
 * takeovers of one instance never run at once. Throws when one is under way.
 */
export function lockTakeover(cwd: string, name: string): { release(): void } {
  const dir = instanceDir(cwd, name);
  makePrivateDir(runtimeRoot(cwd));
  makePrivateDir(dir);
  const path = `${dir}/${TAKEOVER_LOCK_FILE}`;
  const file = lockFile(path);
  if (!file) {
    throw new HotreloadError(
      `a takeover of "${name}" is already under way here; wait for it to end, then try again`,
    );
  }
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      removeOwnFile(path);
      file.close();
    },
  };
}

/**
 * Removes what a takeover that was killed left (its lock and socket), when
 * no takeover holds the lock now: the files that would keep the runtime
 * directory from being removed.
 */
function removeStaleTakeover(dir: string): void {
  removeUnheldLock(
    `${dir}/${TAKEOVER_LOCK_FILE}`,
    () => removeOwnFile(`${dir}/${TAKEOVER_SOCKET_FILE}`),
  );
  // A dead takeover's record stays while its workers serve: a successor adopts them from it.
  for (const record of deadTakeoverRecords(dir)) {
    if (liveWorkers(record.workers, record.hopKey).length === 0) {
      removeTakeoverRecord(dir, record.pid);
    }
  }
}

/**
 * Removes the lock file `path` when nobody holds it (never through a link),
 * after running `first` while this process holds it.
 */
function removeUnheldLock(path: string, first?: () => void): void {
  try {
    if (!Deno.lstatSync(path).isFile) return;
    const file = Deno.openSync(path, { read: true, write: true });
    try {
      // Unlinked while held: whoever locks it next sees the path gone and retries.
      if (!file.tryLockSync(true)) return;
      first?.();
      Deno.removeSync(path);
    } finally {
      file.close();
    }
  } catch { /* none */ }
}

/**
 * Records this process as the instance `name`. Throws when a live instance of
 * that name already runs here; silently replaces a stale record.
 */
export function claimInstance(
  cwd: string,
  record: Omit<InstanceRecord, "pid" | "startTime">,
): Claim {
  const root = runtimeRoot(cwd);
  const dir = instanceDir(cwd, record.name);
  makePrivateDir(root);
  makePrivateDir(dir);
  const lock = lockFile(`${dir}/${LOCK_FILE}`);
  const existing = readRecord(dir);
  if (!lock || (typeof existing === "object" && isLive(existing) && existing.pid !== Deno.pid)) {
    lock?.close();
    const pid = typeof existing === "object" ? ` (pid ${existing.pid})` : "";
    throw new HotreloadError(
      `an instance named "${record.name}" is already running here${pid}; ` +
        `stop it with "hotreload stop --name ${record.name}" or choose another --name`,
    );
  }
  const full: InstanceRecord = {
    ...record,
    pid: Deno.pid,
    startTime: processStartTime(Deno.pid) ?? 0,
  };
  try {
    writeFileAtomic(`${dir}/${RECORD_FILE}`, JSON.stringify(full, null, 2) + "\n");
    writeFileAtomic(`${dir}/${PID_FILE}`, `${Deno.pid}\n`);
  } catch (error) {
    removeInstanceFiles(dir);
    lock.close();
    throw error;
  }
  let released = false;
  return {
    dir,
    record: full,
    release() {
      if (released) return;
      released = true;
      removeInstanceFiles(dir);
      removeRuntimeModules(dir);
      removeStaleTakeover(dir);
      removeOwnFile(`${dir}/${LOCK_FILE}`);
      lock.close();
      removeEmptyDir(dir);
      removeEmptyDir(root);
    },
  };
}

/**
 * Where a compiled binary writes the runtime modules its workers preload:
 * one directory per supervisor, since during a takeover two supervisors of
 * one instance run side by side, each with its own version of them.
 */
export function runtimeModulesDir(dir: string, pid = Deno.pid): string {
  return `${dir}/runtime-${pid}`;
}

/**
 * Removes the runtime modules this supervisor extracted, and those of
 * supervisors that are gone (a SIGKILL leaves them); a real directory only.
 */
function removeRuntimeModules(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(entry.name.match(/^runtime-(\d+)$/)?.[1]);
    if (!entry.isDirectory || !pid) continue;
    if (pid !== Deno.pid && processStartTime(pid) !== undefined) continue;
    try {
      Deno.removeSync(`${dir}/${entry.name}`, { recursive: true });
    } catch { /* gone meanwhile */ }
  }
}

/** Removes a directory if it is empty (rmdir never follows a link nor removes content). */
export function removeEmptyDir(path: string): void {
  try {
    Deno.removeSync(path);
  } catch { /* not empty, or gone */ }
}

/**
 * Removes what a dead supervisor left of instance `dir`: its record and pid
 * file, its runtime modules, and, when nobody holds them, its lock and
 * control socket, a killed takeover's lock and socket, and the directories
 * that are then empty. A lock someone holds (a
 * supervisor starting right now) stays.
 */
export function removeStaleInstance(dir: string): void {
  removeInstanceFiles(dir);
  // The dead supervisor's socket goes only while nobody holds the lock: a supervisor
  // starting now may have made its own already.
  removeUnheldLock(`${dir}/${LOCK_FILE}`, () => removeOwnFile(`${dir}/${CONTROL_SOCKET_FILE}`));
  removeStaleTakeover(dir);
  removeRuntimeModules(dir);
  removeEmptyDir(dir);
  removeEmptyDir(dir.slice(0, dir.lastIndexOf("/")));
}

/**
 * The directory a control command acts on: the nearest of `cwd` and its
 * parents that has a `.hotreload/` (as git finds `.git`), else `cwd`.
 */
export function findProjectDir(cwd: string): string {
  for (let dir = cwd;;) {
    try {
      Deno.lstatSync(runtimeRoot(dir));
      return dir;
    } catch { /* not here */ }
    const parent = dir.slice(0, dir.lastIndexOf("/")) || "/";
    if (parent === dir) return cwd;
    dir = parent;
  }
}

/**
 * Removes an instance's record and pid file (regular files only). The lock
 * stays: it belongs to whoever holds it.
 */
export function removeInstanceFiles(dir: string): void {
  for (const file of [RECORD_FILE, PID_FILE, WORKERS_FILE]) removeOwnFile(`${dir}/${file}`);
}

/**
 * Lists the instances recorded under `.hotreload/` in `cwd`, sorted by name.
 * Throws when `.hotreload` (or an instance directory) is a link or another
 * user's: nothing found there may be acted on.
 */
export function findInstances(cwd: string): FoundInstance[] {
  const root = runtimeRoot(cwd);
  const found: FoundInstance[] = [];
  let entries: Deno.DirEntry[];
  try {
    Deno.lstatSync(root);
  } catch {
    return [];
  }
  checkOwnDir(root);
  try {
    entries = [...Deno.readDirSync(root)];
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const dir = instanceDir(cwd, entry.name);
    checkOwnDir(dir);
    const record = readRecord(dir);
    if (record === undefined) continue;
    if (record === "invalid") {
      found.push({ name: entry.name, dir, state: "invalid" });
      continue;
    }
    found.push({ name: entry.name, dir, record, state: isLive(record) ? "running" : "stale" });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}
