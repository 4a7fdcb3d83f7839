/**
 * What a supervisor records of its live workers, so that a successor finds
 * them if it dies (succession): workers.json, rewritten as the set changes,
 * and, while a `run --takeover` does not have the name yet, its own
 * takeover-<pid>.json. Nothing read back is trusted: a recorded worker counts
 * only while its pid still has the start time recorded and its environment
 * carries the instance's token (INSTANCE_ENV), so a forged or stale list
 * names no other process.
 */
import { createHash } from "node:crypto";
import { processEnv, processStartTime } from "../child/os.ts";
import { isWhole, removeOwnFile, writeFileAtomic } from "./files.ts";

/** The supervisor's live workers (pid and start time), rewritten as they change. */
export const WORKERS_FILE = "workers.json";

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
export function deadTakeoverRecords(dir: string): TakeoverRecord[] {
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
export function liveWorkers(raw: unknown, hopKey: string | undefined): RecordedProcess[] {
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
