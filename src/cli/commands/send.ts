/** `hotreload send <name> '<json>'`: a message to every instance of a custom process. */
import { askOverSocket } from "../../control/client.ts";
import { parseControlArgs } from "../control_args.ts";
import { UsageError } from "../../errors.ts";
import { SEND_HELP } from "../help.ts";

export async function sendCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("send", SEND_HELP, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  const [process, json] = positionals;
  let message: unknown;
  try {
    message = JSON.parse(json);
  } catch {
    throw new UsageError(`the message must be JSON, e.g. '{"job":42}' (got ${json})`);
  }
  const reply = await askOverSocket(values, {
    cmd: "send",
    name: process,
    message,
  });
  console.error(`hotreload: ${reply.message}`);
  return 0;
}
