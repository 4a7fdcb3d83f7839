/**
 * The per-user registry of running instances, for `hotreload list --all`:
 * one file `<pid>.instance.json` per supervisor (its instance record) in
 * `$XDG_RUNTIME_DIR/hotreload/`, or `~/.hotreload/` when XDG_RUNTIME_DIR is
 * not set; written when the supervisor claims its instance, removed when it
 * releases it.
 *
 * Nothing found there is trusted: the directory must be a real directory of
 * ours (never a link); an entry counts only when it is a regular file of
 * ours with our name pattern, a sane record whose pid is still the process
 * that wrote it (same start time), and the instance's own record in its
 * project directory says the same. Stale entries of ours (dead pid, reused
 * pid, garbage) are removed; anything else (foreign files, links) is left
 * alone and ignored.
 */
import { checkRecord, instanceDir, type InstanceRecord, runningInstance } from "./instance_dir.ts";

const ENTRY = /^(\d{1,8})\.instance\.json$/;
/** A registry entry larger than this is not one of ours. */
const MAX_ENTRY_BYTES = 64 * 1024;

/** The registry's directory for this user, from the environment. */
export function registryDir(env: (name: string) => string | undefined = Deno.env.get): string {
  const runtime = env("XDG_RUNTIME_DIR");
  if (runtime) return `${runtime}/hotreload`;
  const home = env("HOME");
  if (!home) throw new Error("neither XDG_RUNTIME_DIR nor HOME is set");
  return `${home}/.hotreload`;
}

/** Why `path` is not a private directory of ours, or undefined when it is. */
function notOurs(path: string): string | undefined {
  const info = Deno.lstatSync(path);
  if (info.isSymlink) return `${path} is a symbolic link`;
  if (!info.isDirectory) return `${path} is not a directory`;
  const uid = Deno.uid();
  if (uid !== null && info.uid !== uid) return `${path} belongs to uid ${info.uid}`;
  return undefined;
}

/**
 * Records `record` in the registry `dir`; returns what removes it. Never
 * throws: an instance runs even when it cannot be registered (the reason is
 * returned for the log).
 */
export function register(
  record: InstanceRecord,
  dir: string = registryDir(),
): { unregister(): void; error?: string } {
  const path = `${dir}/${record.pid}.instance.json`;
  try {
    try {
      Deno.mkdirSync(dir, { mode: 0o700 });
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const why = notOurs(dir);
    if (why) throw new Error(why);
    const temporary = `${path}.${crypto.randomUUID()}.tmp`;
    Deno.writeTextFileSync(temporary, JSON.stringify(record) + "\n", {
      mode: 0o600,
      createNew: true,
    });
    Deno.renameSync(temporary, path);
  } catch (error) {
    return { unregister() {}, error: (error as Error).message.split("\n")[0] };
  }
  return { unregister: () => removeEntry(path) };
}

/** Removes a registry file: a regular file only, never through a link. */
function removeEntry(path: string): void {
  try {
    if (Deno.lstatSync(path).isFile) Deno.removeSync(path);
  } catch { /* gone */ }
}

/** Reads a registry entry: its record when it is a sane one of ours, "garbage" otherwise. */
function readEntry(path: string, pid: number): InstanceRecord | "garbage" | "foreign" {
  try {
    const info = Deno.lstatSync(path);
    const uid = Deno.uid();
    if (!info.isFile || (uid !== null && info.uid !== uid)) return "foreign";
    if (info.size > MAX_ENTRY_BYTES) return "garbage";
    const record = checkRecord(JSON.parse(Deno.readTextFileSync(path)));
    return record && record.pid === pid ? record : "garbage";
  } catch {
    return "garbage";
  }
}

/**
 * Every instance of this user running on the machine, by the registry `dir`
 * (sorted by directory, then name); cleans stale entries on the way.
 * Throws when the registry directory is a link or not ours.
 */
export function runningInstances(dir: string = registryDir()): InstanceRecord[] {
  try {
    Deno.lstatSync(dir);
  } catch {
    return [];
  }
  const why = notOurs(dir);
  if (why) throw new Error(`${why}; hotreload does not read a registry it does not own`);
  const found: InstanceRecord[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const pid = Number(ENTRY.exec(entry.name)?.[1]);
    if (!pid) continue;
    const path = `${dir}/${entry.name}`;
    const record = readEntry(path, pid);
    if (record === "foreign") continue;
    // Live, and its instance's own record (in its project directory) says so too.
    const own = record === "garbage"
      ? undefined
      : runningInstance(instanceDir(record.cwd, record.name));
    if (
      record !== "garbage" && own?.pid === record.pid && own.startTime === record.startTime
    ) {
      found.push(own);
    } else {
      removeEntry(path);
    }
  }
  return found.sort((a, b) => a.cwd.localeCompare(b.cwd) || a.name.localeCompare(b.name));
}
