/** `hotreload restart <name>`: warm restart of a custom process, one instance at a time. */
import { askInstance, failOn } from "../../control/client.ts";
import { parseControlArgs } from "../control_args.ts";
import { CliError } from "../errors.ts";
import { RESTART_HELP } from "../help.ts";

export async function restartCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseControlArgs("restart", argv, {}, 1);
  if (values.help) {
    console.log(RESTART_HELP);
    return 0;
  }
  const { instance, reply } = await askInstance(values.name, {
    cmd: "restart",
    name: positionals[0],
  });
  if (!reply) throw new CliError(`"${instance.name}" does not answer on its control socket`);
  failOn(reply);
  console.error(`hotreload: ${reply.message}`);
  return 0;
}
