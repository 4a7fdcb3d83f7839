/**
 * `hotreload upgrade [-- <run arguments>]`: the running supervisor starts its
 * successor, `run --takeover` (its own run arguments, or these), through the
 * executable at its path; waits until the successor has taken over and the
 * old supervisor is gone, or reports why not (the old one keeps serving).
 */
import { failOn, targetInstance, waitUntilGone } from "../../control/client.ts";
import { instanceDir } from "../../control/instance_dir.ts";
import { sendControlRequest, socketPath } from "../../control/socket.ts";
import { HotreloadError, UsageError } from "../../errors.ts";
import { parseControlArgs } from "../control_args.ts";
import { UPGRADE_HELP } from "../help.ts";
import { parseRunArgs } from "../run_args.ts";

export async function upgradeCommand(argv: string[]): Promise<number> {
  const split = argv.indexOf("--");
  const ours = split === -1 ? argv : argv.slice(0, split);
  const runArgs = split === -1 ? undefined : argv.slice(split + 1);
  const args = parseControlArgs("upgrade", UPGRADE_HELP, ours);
  if (!args) return 0;
  const { values } = args;
  const { cwd, instance } = targetInstance(values);
  if (runArgs) {
    // Bad arguments are said here, not only in the instance's log.
    const config = parseRunArgs(runArgs, instance.cwd);
    if (config.help) throw new UsageError(`the run arguments after "--" cannot be --help`);
    if (config.name !== instance.name) {
      throw new UsageError(
        `the run arguments name the instance "${config.name}", not "${instance.name}": ` +
          `add --name ${instance.name}`,
      );
    }
  }
  const started = Date.now();
  const answer = await sendControlRequest(
    socketPath(instanceDir(cwd, instance.name)),
    { cmd: "upgrade", args: runArgs },
    Infinity,
  );
  if (answer.kind !== "reply") {
    throw new HotreloadError(`"${instance.name}" does not answer on its control socket`);
  }
  failOn(answer.reply);
  const { message } = answer.reply;
  await waitUntilGone(
    instance,
    values.timeout,
    (ms) =>
      `"${instance.name}" was ${message}, but its old supervisor (pid ${instance.pid}) is ` +
      `still running after ${ms} ms`,
  );
  console.error(
    `hotreload: "${instance.name}" upgraded: ${message}; the old supervisor (pid ` +
      `${instance.pid}) is gone (${Date.now() - started} ms)`,
  );
  return 0;
}
