/** Shared argument parsing for the control commands (stop, reload, send, restart, ...). */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";

type Options = Record<string, { type: "string" | "boolean"; short?: string }>;
// deno-lint-ignore no-explicit-any
type ParsedArgs = { values: Record<string, any>; positionals: string[] };

/**
 * Parses a control command's arguments; `--name` and `-h/--help` are always
 * accepted, and a `--timeout` must be whole milliseconds. Returns undefined
 * once it has printed `help` for `--help`.
 */
export function parseControlArgs(
  command: string,
  help: string,
  argv: string[],
  options: Options,
  positionals: number,
): ParsedArgs | undefined {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs({
      args: argv,
      options: { ...options, name: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: positionals > 0,
    });
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; see "hotreload ${command} --help"`);
  }
  if (parsed.values.help) {
    console.log(help);
    return undefined;
  }
  if (parsed.positionals.length !== positionals) {
    throw new UsageError(
      `expected ${positionals} argument(s), got ${parsed.positionals.length}; ` +
        `see "hotreload ${command} --help"`,
    );
  }
  const timeout = parsed.values.timeout;
  if (typeof timeout === "string" && !/^\d+$/.test(timeout)) {
    throw new UsageError(`--timeout must be a whole number of milliseconds (got "${timeout}")`);
  }
  return parsed;
}
