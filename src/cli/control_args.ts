/** Shared argument parsing for the control commands (stop, reload, send, restart, ...). */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { nearest } from "../config/nearest.ts";

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
  const known = { ...options, name: { type: "string" }, help: { type: "boolean", short: "h" } };
  try {
    parsed = parseArgs({
      args: argv,
      options: known as Options,
      strict: true,
      allowPositionals: positionals > 0,
    });
  } catch (error) {
    const hint = `see "hotreload ${command} --help"`;
    const unknown = (error as Error).message.match(/^Unknown option '(-[^']+)'/)?.[1];
    if (unknown === undefined) throw new UsageError(`${(error as Error).message}; ${hint}`);
    const near = unknown.startsWith("--")
      ? nearest(unknown.slice(2), Object.keys(known))
      : undefined;
    throw new UsageError(
      `unknown option ${unknown} for "hotreload ${command}"; ` +
        (near ? `did you mean --${near}?` : hint),
    );
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
