/** `hotreload restart <name>`: warm restart of a custom process, one instance at a time. */
import { askOverSocket } from "../../control/client.ts";
import { parseControlArgs } from "../control_args.ts";
import { RESTART_HELP } from "../help.ts";

export async function restartCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("restart", RESTART_HELP, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  const reply = await askOverSocket(values, {
    cmd: "restart",
    name: positionals[0],
  });
  console.error(`hotreload: ${reply.message}`);
  return 0;
}
