/**
 * Process facts read from the OS: liveness, identity (so a recycled pid is never
 * mistaken for ours) and process-group signalling.
 */

/** True when a process with this pid exists (zombies included). */
export function pidExists(pid: number): boolean {
  try {
    Deno.statSync(`/proc/${pid}`);
    return true;
  } catch {
    return false;
  }
}

/**
 * The process's start time in clock ticks since boot (field 22 of
 * /proc/<pid>/stat), or undefined when it is gone. Together with the pid it
 * identifies one process for its whole life.
 */
export function processStartTime(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name (field 2) may contain spaces and parentheses: skip past its last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[19]);
  } catch {
    return undefined;
  }
}

/** True when the pid is alive and is not a zombie waiting to be reaped. */
export function pidRunning(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Sends a signal to a whole process group; a group that is already gone is fine. */
export function signalGroup(pgid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

/** Sends a signal to one process; a process that is already gone is fine. */
export function signalProcess(pid: number, signal: Deno.Signal): boolean {
  try {
    Deno.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}
