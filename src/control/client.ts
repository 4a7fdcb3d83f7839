/**
 * The CLI side of the control plane: find the instance, ask it over its
 * control socket, and fall back to a signal through its pid file when the
 * socket does not answer.
 */
import { HotreloadError } from "../errors.ts";
import type { ControlReply, ControlRequest } from "./protocol.ts";
import { instanceDir, type InstanceRecord, isLive } from "./instance_dir.ts";
import { signalProcess } from "../child/os.ts";
import { projectDir, selectInstance } from "./instances.ts";
import { sendControlRequest, socketPath } from "./socket.ts";

/**
 * Which instance a control command addresses: `--name`, and `--dir` (the
 * project directory it runs from; default: this one, or the nearest parent
 * with a .hotreload/).
 */
export interface Target {
  name?: string;
  dir?: string;
}

/** The project directory and the running instance a control command addresses (or throws). */
export function targetInstance(target: Target): { cwd: string; instance: InstanceRecord } {
  const cwd = projectDir(target.dir === undefined ? Deno.cwd() : Deno.realPathSync(target.dir));
  return { cwd, instance: selectInstance(cwd, target.name) };
}

/**
 * The instance a command acts on and what its supervisor answered: `reply`
 * when it did; otherwise `silence` says why not, as a sentence.
 */
export async function askInstance(
  target: Target,
  request: ControlRequest,
): Promise<
  { instance: InstanceRecord; reply?: ControlReply; silence?: { timedOut: boolean; why: string } }
> {
  const { cwd, instance } = targetInstance(target);
  // A reload replies when it is done, however long that takes; the rest at once.
  const replyTimeoutMs = request.cmd === "reload" ? Infinity : undefined;
  const answer = await sendControlRequest(
    socketPath(instanceDir(cwd, instance.name)),
    request,
    replyTimeoutMs,
  );
  if (answer.kind === "reply") return { instance, reply: answer.reply };
  const timedOut = answer.kind === "timeout";
  const why = timedOut
    ? `"${instance.name}" (pid ${instance.pid}) did not answer on its control socket within ` +
      `${answer.ms} ms; it may be overloaded or wedged`
    : `"${instance.name}" does not answer on its control socket`;
  return { instance, silence: { timedOut, why } };
}

/**
 * Asks the instance something only its control socket can answer (no signal
 * does the same): returns the successful reply, or throws the CLI error.
 */
export async function askOverSocket(
  target: Target,
  request: ControlRequest,
): Promise<ControlReply & { ok: true }> {
  const { reply, silence } = await askInstance(target, request);
  if (!reply) throw new HotreloadError(silence!.why);
  failOn(reply);
  return reply;
}

/** Turns a failed reply into the CLI error it stands for. */
export function failOn(reply: ControlReply): asserts reply is ControlReply & { ok: true } {
  if (!reply.ok) throw new HotreloadError(reply.error, reply.kind ?? "failure");
}

/** What a graceful stop may take beyond its grace twice (see stopTimeoutMs). */
export const STOP_MARGIN_MS = 10_000;

/**
 * How long a graceful stop may take before the instance counts as wedged:
 * its grace twice (workers, then custom processes) and STOP_MARGIN_MS.
 */
export function stopTimeoutMs(instance: InstanceRecord): number {
  return instance.graceMs * 2 + STOP_MARGIN_MS;
}

/**
 * Waits until the instance's supervisor has exited: `timeout` (whole ms, as
 * the command's --timeout gave it) or stopTimeoutMs. Past it, throws
 * `late(ms)` as a failure.
 */
export async function waitUntilGone(
  instance: InstanceRecord,
  timeout: string | undefined,
  late: (ms: number) => string,
): Promise<void> {
  const timeoutMs = timeout !== undefined ? Number(timeout) : stopTimeoutMs(instance);
  const deadline = Date.now() + timeoutMs;
  while (isLive(instance)) {
    if (Date.now() > deadline) throw new HotreloadError(late(timeoutMs));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Signals an instance's supervisor, only after checking its record again:
 * the pid must still be the process that wrote it (same start time), since
 * an instance that just exited leaves a pid the system may give to anyone.
 * Returns false, sending nothing, when the instance is gone.
 */
export function signalInstance(instance: InstanceRecord, signal: Deno.Signal): boolean {
  return isLive(instance) && signalProcess(instance.pid, signal);
}
