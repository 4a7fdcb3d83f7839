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
import { type InstanceRecord, TAKEOVER_SOCKET_FILE } from "../control/instance_dir.ts";
import { sendControlRequest, socketPath } from "../control/socket.ts";
import { processStartTime, signalProcess } from "../child/os.ts";

/** The instance a takeover replaces, as its record says. */
export type Predecessor = Pick<InstanceRecord, "pid" | "startTime" | "version" | "graceMs">;

/** How the predecessor ended: it stopped as asked, was gone already, or had to be killed. */
export type PredecessorEnd = "stopped" | "gone" | "killed";

/** The socket a supervisor taking over listens on until it has the name. */
export function takeoverSocketPath(instanceDir: string): string {
  return `${instanceDir}/${TAKEOVER_SOCKET_FILE}`;
}

/** How often the predecessor is checked for having exited. */
const POLL_MS = 20;
/** Beyond its own grace twice (workers, then processes), what a stop may take before the kill. */
const STOP_MARGIN_MS = 10_000;

/**
 * Asks the predecessor to stop gracefully (its workers drain, then its
 * custom processes) and resolves once it has exited. One that has not
 * exited after twice its grace and a margin is wedged: it is killed
 * (SIGKILL), and its workers, already draining, end on their own.
 */
export async function stopPredecessor(
  instanceDir: string,
  predecessor: Predecessor,
): Promise<PredecessorEnd> {
  const live = () => processStartTime(predecessor.pid) === predecessor.startTime;
  if (!live()) return "gone";
  const answer = await sendControlRequest(socketPath(instanceDir), {
    cmd: "stop",
    successor: Deno.pid,
  });
  // No answer on its socket (an old version, or overloaded): the signal means the same.
  if (answer.kind !== "reply" && live()) signalProcess(predecessor.pid, "SIGTERM");
  const deadline = Date.now() + predecessor.graceMs * 2 + STOP_MARGIN_MS;
  while (live()) {
    if (Date.now() > deadline) {
      if (live()) signalProcess(predecessor.pid, "SIGKILL");
      return "killed";
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return "stopped";
}
