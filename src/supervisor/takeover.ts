/**
 * Takeover (`run --takeover`): the outside-world half. The new supervisor
 * runs beside the instance it replaces, under the same name but without it:
 * its control socket is `takeover.sock` and it claims nothing, so every
 * command still reaches the old supervisor. Once its own workers have
 * settled, the supervisor's loop calls `stopPredecessor` (a graceful stop,
 * as `hotreload stop` asks it), then `claim` takes the name: lock, record,
 * the usual control socket.
 *
 * The old supervisor is only ever signalled after its record is checked
 * again (same pid, same start time): it may have exited meanwhile, and its
 * pid then belongs to anyone.
 *
 * @module
 */
import { type InstanceRecord, isLive, TAKEOVER_SOCKET_FILE } from "../control/instance_dir.ts";
import { sendControlRequest, socketPath } from "../control/socket.ts";
import { signalInstance, stopTimeoutMs } from "../control/client.ts";
import { fileURLToPath } from "node:url";

/** The instance a takeover replaces: its record. */
export type Predecessor = InstanceRecord;

/** How the predecessor ended: it stopped as asked, was gone already, or had to be killed. */
export type PredecessorEnd = "stopped" | "gone" | "killed";

/** The socket a supervisor taking over listens on until it has the name. */
export function takeoverSocketPath(instanceDir: string): string {
  return `${instanceDir}/${TAKEOVER_SOCKET_FILE}`;
}

/** How often the predecessor is checked for having exited. */
const POLL_MS = 20;

/**
 * Asks the predecessor to stop gracefully (its workers drain, then its
 * custom processes) and resolves once it has exited. One that has not
 * exited after stopTimeoutMs is wedged: it is killed
 * (SIGKILL), and its workers, already draining, end on their own.
 */
export async function stopPredecessor(
  instanceDir: string,
  predecessor: Predecessor,
): Promise<PredecessorEnd> {
  if (!isLive(predecessor)) return "gone";
  const answer = await sendControlRequest(socketPath(instanceDir), {
    cmd: "stop",
    successor: Deno.pid,
  });
  // No answer on its socket (an old version, or overloaded): the signal means the same.
  if (answer.kind !== "reply") signalInstance(predecessor, "SIGTERM");
  const deadline = Date.now() + stopTimeoutMs(predecessor);
  while (isLive(predecessor)) {
    if (Date.now() > deadline) {
      signalInstance(predecessor, "SIGKILL");
      return "killed";
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return "stopped";
}

/** A successor this supervisor started (`hotreload upgrade`). */
export interface Successor {
  pid: number;
  /** Its command line, for the log. */
  argv: string[];
  /** Resolves when it exits (it takes the instance over, or fails). */
  exited: Promise<Deno.CommandStatus>;
}

/**
 * Starts this instance's successor: `run --takeover` with `runArgs` (the
 * run arguments after `run`), or with this supervisor's own, through the
 * executable at this one's path (a binary replaced on disk is the new
 * version). Its output goes where ours goes (under systemd, the journal),
 * and, started by us, it runs in the service's cgroup, where systemd
 * accepts its MAINPID=. It runs in a session of its own: our death is not
 * its death. Throws when it cannot be started.
 */
export function spawnSuccessor(cwd: string, runArgs: string[] | undefined): Successor {
  // The path of a binary replaced since this one started reads "... (deleted)".
  const command = Deno.execPath().replace(/ \(deleted\)$/, "");
  // From source, the successor runs the same cli.ts; a compiled binary is its own entry.
  const prefix = Deno.build.standalone ? [] : ["run", "-A", fileURLToPath(Deno.mainModule)];
  const own = runArgs ?? withoutTakeover(Deno.args.slice(1));
  const args = [...prefix, "run", "--takeover", ...own];
  const env = Deno.env.toObject();
  // systemd names the main process that must feed the watchdog; the successor will be it.
  delete env.WATCHDOG_PID;
  const child = new Deno.Command(command, {
    args,
    cwd,
    env,
    clearEnv: true,
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
    detached: true,
  }).spawn();
  child.unref();
  return { pid: child.pid, argv: [command, ...args], exited: child.status };
}

/** Run arguments without `--takeover` (a supervisor that took over upgrades again); app arguments stay. */
function withoutTakeover(args: string[]): string[] {
  const appArgs = args.indexOf("--");
  const ours = appArgs === -1 ? args : args.slice(0, appArgs);
  const rest = appArgs === -1 ? [] : args.slice(appArgs);
  return [...ours.filter((arg) => arg !== "--takeover"), ...rest];
}
