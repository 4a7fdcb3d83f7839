/**
 * The control commands' flags (stop, reload, send, restart, ...), declared
 * once per command as {@link Setting}s, the run settings' type: their parser
 * here and their help (help.ts: the usage lines, each command's option list)
 * derive from the table, so a flag a command accepts is always in its help
 * (src/cli/help_test.ts).
 */
import { parseArgs } from "node:util";
import { UsageError } from "../errors.ts";
import { nearest } from "../config/nearest.ts";
import type { Setting } from "../config/settings.ts";
import { STOP_MARGIN_MS } from "../control/client.ts";

/** How long `scale` waits for its workers when no --timeout is given. */
export const SCALE_TIMEOUT_MS = 60_000;
/** `stop`'s and `upgrade`'s wait without --timeout, as stopTimeoutMs computes it. */
const STOP_TIMEOUT = `twice its grace + ${STOP_MARGIN_MS}`;

/** `--timeout`: whole milliseconds, as the command waits for them. */
function timeout(help: string, fallback: string): Setting {
  return {
    flag: "timeout",
    value: "<ms>",
    help: `${help} (default: ${fallback})`,
    parse(raw) {
      if (!/^\d+$/.test(raw)) {
        throw new UsageError(`--timeout must be a whole number of milliseconds (got "${raw}")`);
      }
      return raw;
    },
  };
}

const name = (help: string): Setting => ({ flag: "name", value: "<name>", help });
const json = (help: string): Setting => ({ flag: "json", help });
/** `--dir`: the project directory of the instance, when not this one (or a parent of it). */
const DIR: Setting = {
  flag: "dir",
  value: "<path>",
  help: "the project directory the instance runs from (default: this one, or the nearest " +
    "parent with a .hotreload/)",
  parse(raw) {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(raw);
    } catch {
      throw new UsageError(`--dir ${raw}: no such directory`);
    }
    if (!info.isDirectory) throw new UsageError(`--dir ${raw} is not a directory`);
    return raw;
  },
};
const HELP: Setting = { flag: "help", short: "h", help: "show this help" };

/** A control command: its arguments before the flags, its one-line summary, and its flags. */
export interface ControlCommand {
  /** `<process> '<json>'`, as usage lines show them. */
  positionals: string[];
  /** After the flags, in the usage line (`[-- <run args>]`). */
  tail?: string;
  /** What the main help says it does. */
  summary: string;
  flags: Setting[];
}

/** Every control command, in the main help's order. */
export const CONTROL_COMMANDS = {
  stop: {
    positionals: [],
    summary: "stop a running instance",
    flags: [
      name("the instance to stop"),
      DIR,
      { flag: "fast", help: "kill every child at once instead of draining" },
      timeout("how long to wait for it to exit", STOP_TIMEOUT),
      HELP,
    ],
  },
  reload: {
    positionals: [],
    summary: "reload a running instance",
    flags: [
      name("the instance to reload"),
      DIR,
      { flag: "workers", help: "reload only the workers" },
      { flag: "processes", help: "reload only the custom processes" },
      HELP,
    ],
  },
  restart: {
    positionals: ["<process>"],
    summary: "warm restart of a custom process",
    flags: [name("the instance (of hotreload) to act on"), DIR, HELP],
  },
  send: {
    positionals: ["<process>", "'<json>'"],
    summary: "message to a custom process",
    flags: [name("the instance (of hotreload) to act on"), DIR, HELP],
  },
  status: {
    positionals: [],
    summary: "what runs, with memory and CPU",
    flags: [
      name("the instance to ask"),
      DIR,
      json("the same as JSON (stable; see the README)"),
      HELP,
    ],
  },
  monit: {
    positionals: [],
    summary: "live table in the terminal",
    flags: [name("the instance to watch"), DIR, HELP],
  },
  scale: {
    positionals: ["<n|+n|-n|auto>"],
    summary: "change the number of workers",
    flags: [
      name("the instance to scale"),
      DIR,
      timeout("how long to wait for the workers", String(SCALE_TIMEOUT_MS)),
      HELP,
    ],
  },
  upgrade: {
    positionals: [],
    tail: "[-- <run args>]",
    summary: "replace the supervisor (takeover)",
    flags: [
      name("the instance to upgrade"),
      DIR,
      timeout(
        "how long to wait for the old supervisor to exit once taken over",
        STOP_TIMEOUT,
      ),
      HELP,
    ],
  },
  logs: {
    positionals: [],
    summary: "the instance's recent output",
    flags: [
      name("the instance whose output to show"),
      DIR,
      {
        flag: "lines",
        value: "<n>",
        help: "how many of the last lines to show (default: 50; the supervisor keeps 5000)",
        parse(raw) {
          if (!/^\d+$/.test(raw) || Number(raw) > 100_000) {
            throw new UsageError(`--lines must be a whole number from 0 to 100000 (got "${raw}")`);
          }
          return raw;
        },
      },
      { flag: "follow", short: "f", help: "then print new lines as they come, until Ctrl-C" },
      HELP,
    ],
  },
  list: {
    positionals: [],
    summary: "instances here (--all: everywhere)",
    flags: [
      json("the same as JSON"),
      {
        flag: "all",
        help: "every running instance of this user on this machine, whatever its directory",
      },
      // Accepted by every control command; list shows every instance, whatever it names.
      name("ignored: list shows every instance recorded here"),
      DIR,
      HELP,
    ],
  },
} satisfies Record<string, ControlCommand>;

export type ControlCommandName = keyof typeof CONTROL_COMMANDS;

// deno-lint-ignore no-explicit-any
type ParsedArgs = { values: Record<string, any>; positionals: string[] };

/**
 * Parses a control command's arguments by its flags in {@link CONTROL_COMMANDS};
 * each flag's `parse` checks its value. Returns undefined once it has printed
 * `help` for `--help`.
 */
export function parseControlArgs(
  command: ControlCommandName,
  help: string,
  argv: string[],
): ParsedArgs | undefined {
  const { flags, positionals } = CONTROL_COMMANDS[command] as ControlCommand;
  let parsed: ParsedArgs;
  const known = Object.fromEntries(flags.map((flag) => [flag.flag, {
    type: flag.value === undefined ? "boolean" as const : "string" as const,
    ...flag.short ? { short: flag.short } : {},
  }]));
  try {
    parsed = parseArgs({
      args: argv,
      options: known,
      strict: true,
      allowPositionals: positionals.length > 0,
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
  if (parsed.positionals.length !== positionals.length) {
    throw new UsageError(
      `expected ${positionals.length} argument(s), got ${parsed.positionals.length}; ` +
        `see "hotreload ${command} --help"`,
    );
  }
  for (const flag of flags) {
    const raw = parsed.values[flag.flag];
    if (typeof raw === "string") flag.parse?.(raw);
  }
  return parsed;
}
