/** Shared argument parsing for the control commands (stop, reload, send, restart). */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

type Options = Record<string, { type: "string" | "boolean"; short?: string }>;

/** Parses a control command's arguments; `--name` and `-h/--help` are always accepted. */
export function parseControlArgs(
  command: string,
  argv: string[],
  options: Options,
  positionals: number,
  // deno-lint-ignore no-explicit-any
): { values: Record<string, any>; positionals: string[] } {
  try {
    const parsed = parseArgs({
      args: argv,
      options: {
        ...options,
        name: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: positionals > 0,
    });
    if (!parsed.values.help && parsed.positionals.length !== positionals) {
      throw new Error(
        `expected ${positionals} argument(s), got ${parsed.positionals.length}`,
      );
    }
    return parsed;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; see "hotreload ${command} --help"`);
  }
}
