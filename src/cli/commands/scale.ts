/** `hotreload scale <n>`: more or fewer workers; new ones join ready-gated, removed ones drain. */
import { askOverSocket } from "../../control/client.ts";
import { parseControlArgs } from "../control_args.ts";
import { UsageError } from "../errors.ts";
import { SCALE_HELP } from "../help.ts";

export async function scaleCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseControlArgs("scale", argv, {}, 1);
  if (values.help) {
    console.log(SCALE_HELP);
    return 0;
  }
  const raw = positionals[0];
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 1024) {
    throw new UsageError(`scale needs a whole number of workers from 1 to 1024 (got "${raw}")`);
  }
  const reply = await askOverSocket(values.name, {
    cmd: "scale",
    workers: Number(raw),
  });
  console.error(`hotreload: ${reply.message}`);
  return 0;
}
