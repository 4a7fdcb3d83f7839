/**
 * The operating system as a child process meets it: starting one (`Os`,
 * whose processes are `OsProcess`es: a pid, three pipes, an exit), signalling
 * a process or its group, and process facts read from /proc (identity, so a
 * recycled pid is never mistaken for ours). ManagedChild runs on `Os`; unit
 * tests give it a fake one (fake_os.ts) and nothing else is faked.
 */
import { inOwnSession } from "./session.ts";

/** The period of the timer that holds the event loop while a child runs (it never needs to fire). */
const HOLD_LOOP_MS = 2 ** 30;

/** A started process: its pid, its pipes and its exit. */
export interface OsProcess {
  readonly pid: number;
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<Deno.CommandStatus>;
}

/** What a managed child needs of the OS. */
export interface Os {
  /**
   * Starts `command` in a process group of its own, with exactly `env` as
   * its environment and piped stdio; throws when it cannot start at all.
   */
  spawn(
    command: string,
    options: { args: string[]; env: Record<string, string>; cwd: string },
  ): OsProcess;
  /** Sends `signal` to a process, or to its whole group; false when there is none. */
  signal(pid: number, signal: Deno.Signal, group: boolean): boolean;
  /** /proc/<pid>/stat's fields (see procStat), or undefined when the process is gone. */
  stat(pid: number): string[] | undefined;
}

/**
 * Starts `command` as a child is started: exactly `env` as its environment
 * (the spec's is the whole of it: the supervisor's, less what children must
 * not see), piped stdio, `detached` as given.
 */
export function spawnPiped(
  command: string,
  { args, env, cwd }: { args: string[]; env: Record<string, string>; cwd: string },
  detached: boolean,
): Deno.ChildProcess {
  return new Deno.Command(command, {
    args,
    env,
    clearEnv: true,
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    detached,
  }).spawn();
}

/** The real OS: Deno.Command, kill(2), /proc. */
export const REAL_OS: Os = {
  spawn: (command, { args, env, cwd }) => {
    // Its own session and process group: signals to the group reach grandchildren (session.ts).
    const launch = inOwnSession(command, args);
    const child = spawnPiped(launch.command, { args: launch.args, env, cwd }, launch.detached);
    if (!launch.detached) {
      // What `detached` also meant: Deno does not SIGKILL the child when the supervisor's
      // runtime ends (an uncaught error), so an orphaned worker drains by itself. `unref` is
      // the only way to say so, and it also lets go of the event loop: a timer holds the loop
      // until the exit, as a child not unref'd would (ManagedChild's own timer then holds it
      // while the pipes drain).
      child.unref();
      const holdLoop = setInterval(() => {}, HOLD_LOOP_MS);
      const letGo = () => clearInterval(holdLoop);
      child.status.then(letGo, letGo);
    }
    return child;
  },
  signal: (pid, signal, group) => send(pid, signal, group),
  stat: (pid) => procStat(pid),
};

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
