/** `hotreload stop`: graceful (or, with --fast, immediate) stop, waiting until the instance is gone. */
import { askInstance, failOn, signalInstance, waitUntilGone } from "../../control/client.ts";
import { parseControlArgs } from "../control_args.ts";
import { STOP_HELP } from "../help.ts";

export async function stopCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("stop", STOP_HELP, argv);
  if (!args) return 0;
  const { values } = args;
  const { instance, reply } = await askInstance(values, { cmd: "stop", fast: values.fast });
  if (reply) failOn(reply);
  // Gone already (it answered nothing because it was stopping): nothing to signal.
  else signalInstance(instance, values.fast ? "SIGQUIT" : "SIGTERM");
  await waitUntilGone(
    instance,
    values.timeout,
    (ms) =>
      `"${instance.name}" (pid ${instance.pid}) is still running after ${ms} ms; ` +
      `stop it at once with "hotreload stop --fast"`,
  );
  console.error(`hotreload: stopped "${instance.name}" (pid ${instance.pid})`);
  return 0;
}
