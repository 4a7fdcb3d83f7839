/**
 * The runtime directory `.hotreload/<name>/` (mode 0700) in the directory a
 * supervisor runs from: its pid file and the record that lets other commands
 * find it. A record whose pid is dead, or now belongs to another process, is
 * stale: it is removed, never signalled.
 */
import { CliError } from "../cli/errors.ts";
import { processStartTime } from "../process/os.ts";

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
}

/** An instance found under `.hotreload/`. */
export interface FoundInstance {
  name: string;
  dir: string;
  record: InstanceRecord;
  state: "running" | "stale";
}

const RECORD_FILE = "instance.json";
const PID_FILE = "supervisor.pid";

/** `.hotreload/` under `cwd`. */
export function runtimeRoot(cwd: string): string {
  return `${cwd}/.hotreload`;
}

/** `.hotreload/<name>/` under `cwd`. */
export function instanceDir(cwd: string, name: string): string {
  return `${runtimeRoot(cwd)}/${name}`;
}

function readRecord(dir: string): InstanceRecord | undefined {
  try {
    return JSON.parse(Deno.readTextFileSync(`${dir}/${RECORD_FILE}`)) as InstanceRecord;
  } catch {
    return undefined;
  }
}

/** True when the recorded supervisor is still the process that wrote the record. */
export function isLive(record: InstanceRecord): boolean {
  return processStartTime(record.pid) === record.startTime;
}

function makePrivateDir(path: string): void {
  Deno.mkdirSync(path, { recursive: true, mode: 0o700 });
  Deno.chmodSync(path, 0o700);
}

/**
 * Removes an instance's files: its record, pid file and extracted runtime
 * modules (the directory too when nothing else is left in it).
 */
export function removeInstanceFiles(dir: string): void {
  for (const file of [RECORD_FILE, PID_FILE, "runtime"]) {
    try {
      Deno.removeSync(`${dir}/${file}`, { recursive: true });
    } catch { /* already gone */ }
  }
  try {
    Deno.removeSync(dir);
  } catch { /* not empty or gone */ }
}

/**
 * Records this process as the instance `name`. Throws when a live instance of
 * that name already runs here; silently replaces a stale record.
 */
export function claimInstance(cwd: string, record: Omit<InstanceRecord, "pid" | "startTime">) {
  const dir = instanceDir(cwd, record.name);
  makePrivateDir(runtimeRoot(cwd));
  makePrivateDir(dir);
  const existing = readRecord(dir);
  if (existing && isLive(existing)) {
    throw new CliError(
      `an instance named "${record.name}" is already running here (pid ${existing.pid}); ` +
        `stop it with "hotreload stop --name ${record.name}" or choose another --name`,
    );
  }
  const full: InstanceRecord = {
    ...record,
    pid: Deno.pid,
    startTime: processStartTime(Deno.pid) ?? 0,
  };
  // Write-then-rename so a reader never sees half a record.
  const temporary = `${dir}/${RECORD_FILE}.${Deno.pid}.tmp`;
  Deno.writeTextFileSync(temporary, JSON.stringify(full, null, 2) + "\n", { mode: 0o600 });
  Deno.renameSync(temporary, `${dir}/${RECORD_FILE}`);
  Deno.writeTextFileSync(`${dir}/${PID_FILE}`, `${Deno.pid}\n`, { mode: 0o600 });
  return { dir, record: full };
}

/** Lists the instances recorded under `.hotreload/` in `cwd`, sorted by name. */
export function findInstances(cwd: string): FoundInstance[] {
  const found: FoundInstance[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(runtimeRoot(cwd))];
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!entry.isDirectory) continue;
    const dir = instanceDir(cwd, entry.name);
    const record = readRecord(dir);
    if (!record) continue;
    found.push({ name: entry.name, dir, record, state: isLive(record) ? "running" : "stale" });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}
