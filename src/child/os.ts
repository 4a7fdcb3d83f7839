/**
 * Process facts read from /proc (identity, so a recycled pid is never mistaken
 * for ours), and signalling a process or its group.
 */

/**
 * The fields of /proc/<pid>/stat from the third (the state) on, so field N of
 * proc(5) is at index N - 3; undefined when the process is gone.
 */
export function procStat(pid: number): string[] | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * The process's start time in clock ticks since boot (field 22 of
 * /proc/<pid>/stat), or undefined when it is gone. Together with the pid it
 * identifies one process for its whole life. A zombie (state Z: it has
 * exited, its parent has not reaped it yet) is gone: it serves nothing and
 * holds no lock.
 */
export function processStartTime(pid: number): number | undefined {
  const fields = procStat(pid);
  return fields === undefined || fields[0] === "Z" ? undefined : Number(fields[19]);
}

/**
 * The value of `name` in the environment `pid` was started with
 * (/proc/<pid>/environ; readable for our own user's processes), or undefined.
 */
export function processEnv(pid: number, name: string): string | undefined {
  let environ: string;
  try {
    environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
  } catch {
    return undefined;
  }
  const prefix = `${name}=`;
  return environ.split("\0").find((entry) => entry.startsWith(prefix))?.slice(prefix.length);
}

/** Sends a signal to a whole process group; a group that is already gone is fine. */
export function signalGroup(pgid: number, signal: Deno.Signal): boolean {
  return send(pgid, signal, true);
}

/** Sends a signal to one process; a process that is already gone is fine. */
export function signalProcess(pid: number, signal: Deno.Signal): boolean {
  return send(pid, signal, false);
}

function send(pid: number, signal: Deno.Signal, group: boolean): boolean {
  // Only a real process other than init: 0, -1 and 1 would mean our own group,
  // every process, or init (and -0, -1 as groups the same).
  if (!Number.isSafeInteger(pid) || pid <= 1) return false;
  try {
    Deno.kill(group ? -pid : pid, signal);
    return true;
  } catch {
    return false;
  }
}
