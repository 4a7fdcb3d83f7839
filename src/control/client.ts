/**
 * The CLI side of the control plane: find the instance, ask it over its
 * control socket, and fall back to a signal through its pid file when the
 * socket does not answer.
 */
import { CliError } from "../cli/errors.ts";
import type { ControlReply, ControlRequest } from "./protocol.ts";
import { instanceDir, type InstanceRecord } from "./runtime_dir.ts";
import { selectInstance } from "./instances.ts";
import { sendControlRequest, socketPath } from "./socket.ts";

/** The instance a command acts on and what its supervisor answered (undefined: no answer). */
export async function askInstance(
  name: string | undefined,
  request: ControlRequest,
): Promise<{ instance: InstanceRecord; reply?: ControlReply }> {
  const cwd = Deno.cwd();
  const instance = selectInstance(cwd, name);
  const reply = await sendControlRequest(socketPath(instanceDir(cwd, instance.name)), request);
  return { instance, reply };
}

/**
 * Asks the instance something only its control socket can answer (no signal
 * does the same): returns the successful reply, or throws the CLI error.
 */
export async function askOverSocket(
  name: string | undefined,
  request: ControlRequest,
): Promise<ControlReply & { ok: true }> {
  const { instance, reply } = await askInstance(name, request);
  if (!reply) throw new CliError(`"${instance.name}" does not answer on its control socket`);
  failOn(reply);
  return reply;
}

/** Turns a failed reply into the CLI error it stands for. */
export function failOn(reply: ControlReply): asserts reply is ControlReply & { ok: true } {
  if (!reply.ok) throw new CliError(reply.error, reply.code ?? 1);
}
