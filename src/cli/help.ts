/**
 * Help texts. Every option list and usage line is generated: `run`'s from the
 * settings table, the control commands' from theirs (control_args.ts), so
 * help names every flag the code accepts (help_test.ts checks it).
 */
import { flagText, helpText, type Setting, SETTINGS } from "../config/settings.ts";
import { CONTROL_COMMANDS, type ControlCommand, type ControlCommandName } from "./control_args.ts";
import { ROW_STATES } from "../control/protocol.ts";

export const VERSION = "0.1.0";

/** A control command's usage: `hotreload scale <n> [--name <name>] [--timeout <ms>]`. */
function usage(command: ControlCommandName): string {
  const { positionals, flags, tail } = CONTROL_COMMANDS[command] as ControlCommand;
  const options = flags.filter((flag) => flag.flag !== "help").map((flag) =>
    `[--${flag.flag}${flag.value ? ` ${flag.value}` : ""}]`
  );
  return ["hotreload", command, ...positionals, ...options, ...tail ? [tail] : []].join(" ");
}

/** The main help's command lines: usage, then what it does (on the next line when too long). */
function commandLines(): string {
  const column = 63;
  const lines = [
    ["hotreload run <entry> [options] [deno flags] [-- app args]", "start the app"],
    ["hotreload start <entry> [options] ...", "run --detach: in the background"],
  ];
  for (const [command, { summary }] of Object.entries(CONTROL_COMMANDS)) {
    lines.push([usage(command as ControlCommandName), summary]);
  }
  return lines.map(([use, summary]) =>
    `  ${use}`.length < column && column + summary.length <= 100
      ? `${`  ${use}`.padEnd(column)}${summary}`
      : `  ${use}\n${"".padEnd(column)}${summary}`
  ).join("\n");
}

/** `hotreload --help`. */
export const MAIN_HELP =
  `hotreload ${VERSION} — run a Deno app as N workers on one port, reload on change

Usage:
${commandLines()}

Signals to the supervisor: TERM/INT graceful stop, QUIT immediate stop, HUP reload,
USR2 reload of the custom processes only, TTIN/TTOU one worker more/fewer.
(SIGUSR1 is never used: it opens the V8 inspector in every Deno process.)

Run "hotreload run --help" for the options of run.`;

/** Wraps `text` to `width` columns. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}

/** Option rows, every line within 100 columns: the flag, then its help from `width` on. */
function optionRows(settings: readonly Setting[], width: number): string {
  return settings.flatMap((setting) => {
    const flag = `${setting.short ? "" : "    "}${flagText(setting)}`;
    const help = wrap(helpText(setting), 100 - width - 3);
    if (flag.length > width) {
      return [`  ${flag}`, ...help.map((line) => `  ${"".padEnd(width)} ${line}`)];
    }
    return help.map((line, i) => `  ${(i === 0 ? flag : "").padEnd(width)} ${line}`);
  }).join("\n");
}

/** `hotreload run --help`: every line fits 100 columns. */
export function runHelp(): string {
  return `Usage: hotreload run <entry> [options] [deno flags] [-- app args]

Runs <entry> as worker processes sharing one port (SO_REUSEPORT) and reloads
them, new ones ready first, when files change. Options and Deno flags may come before
or after the entry; app arguments only after "--". Settings can also live in
hotreload.json or under "hotreload" in deno.json; flags win over the file.

Options:
${optionRows(SETTINGS, 32)}

Deno flags (-A, --allow-*, --deny-*, --env-file, --import-map, --lock, --check,
--cached-only, --v8-flags, --unstable-*, -c/--config, ...) are passed to every
worker, which gets exactly those permissions.`;
}

/** A control command's help: its usage line, what it does, and its options from the table. */
function controlHelp(command: ControlCommandName, text: string): string {
  const { flags } = CONTROL_COMMANDS[command] as ControlCommand;
  return `Usage: ${usage(command)}\n\n${text}\n\nOptions:\n${optionRows(flags, 24)}`;
}

/** `hotreload stop --help`. */
export const STOP_HELP = controlHelp(
  "stop",
  `Stops the instance running from this directory gracefully (workers finish
their requests, then the custom processes stop) and waits until it is gone.
Without --name it acts on the only instance running here. Exits 3 when none
is running.`,
);

/** `hotreload reload --help`. */
export const RELOAD_HELP = controlHelp(
  "reload",
  `Reloads the instance running from this directory to the current code, and
waits for its result: new workers replace the old ones, which leave service
only once new code serves (rolling: each replacement is ready before its
predecessor leaves; --switch all: every old worker leaves when the first new
one is ready); then the custom processes with "reload": true restart one at a
time. If the new code fails to start, the old workers keep serving (see the
README, Broken code, for a worker that fails after it was ready) and the
command exits 1 with the error. Exits 3 when none is running. (SIGHUP to the
supervisor does the same; SIGUSR2 only the custom processes.)`,
);

/** `hotreload restart --help`. */
export const RESTART_HELP = controlHelp(
  "restart",
  `Warm restart of every instance of a custom process, one at a time: each stops
gracefully (its onShutdown runs) and starts again with the current code.
SIGTERM to one instance's pid restarts just that one. Exits 3 when no custom
process has that name.`,
);

/** `hotreload send --help`. */
export const SEND_HELP = controlHelp(
  "send",
  `Delivers a JSON message to the onMessage handler of every instance of a
custom process (through its stdin). Exits 3 when no such process runs.`,
);

/** `hotreload status --help`. */
export const STATUS_HELP = controlHelp(
  "status",
  wrap(
    `Shows the supervisor (pid, uptime, watcher, last reload) and one row per child:
role (worker, spare, process), name, pid, state (${ROW_STATES.join(", ")}),
generation, uptime, restarts, memory (RSS), CPU % and requests served. A held
worker was replaced and is out of service: the requests still reaching it are
sent on to new code until the whole new generation serves; then it drains.
Exits 3 when no instance is running.`.replaceAll("\n", " "),
    80,
  ).join("\n"),
);

/** `hotreload monit --help`. */
export const MONIT_HELP = controlHelp(
  "monit",
  `Shows the status table live: one row per child (as status shows it) with its
requests per second and, per worker, a sparkline of them over the last minute,
redrawn in place each second. q or Ctrl-C leaves. Needs a terminal; for a
script use "status --json". The same, with charts and a reload timeline, is in
the browser where --metrics serves (http://127.0.0.1:<port>/). Exits 3 when no
instance is running.`,
);

/** `hotreload scale --help`. */
export const SCALE_HELP = controlHelp(
  "scale",
  `Changes the number of workers (1 to 1024) to <n>, to <n> more (+n) or fewer
(-n), or to one per CPU (auto, as run --workers auto): new ones start and join
once ready, removed ones drain; with --spares auto the warm spares follow.
Waits until exactly that many workers are ready and reports; exits 1 when that
takes longer than --timeout, or when another scale changes the number meanwhile.
SIGTTIN / SIGTTOU to the supervisor add / remove one. Exits 3 when no instance
is running.`,
);

/** `hotreload upgrade --help`. */
export const UPGRADE_HELP = controlHelp(
  "upgrade",
  `Replaces the running supervisor without a dropped request: it starts its own
successor, "hotreload run --takeover" with its own run arguments (or those after
"--"), through the executable at its path (replace the binary or Deno first).
The successor's workers start beside the old ones; once they have settled, the
old instance stops gracefully. Under systemd the successor runs in the service's
cgroup and becomes its main process. Waits until the old supervisor is gone;
exits 1 if the successor could not take over (the old instance keeps serving).
Exits 3 when no instance is running.`,
);

/** `hotreload logs --help`. */
export const LOGS_HELP = controlHelp(
  "logs",
  `Prints the instance's recent output: the supervisor's own lines and its
workers' and custom processes' (prefixed "[worker 0 1234]" as the supervisor
prints them), from a buffer in the supervisor (the last 5000 lines, 1 MB at
most; longer lines are cut, control characters replaced). With -f it goes on
printing new lines until Ctrl-C (exit 0), or until the instance stops (a last
line says so). When the instance does not run, prints the end of the output
file an instance started with --detach left (.hotreload/<name>/output.log).
Exits 3 when no instance is running and no output file is found.`,
);

/** `hotreload list --help`. */
export const LIST_HELP = controlHelp(
  "list",
  `Lists the instances recorded under .hotreload/ in this directory, running or
stale (their supervisor died without cleaning up). With --all: every running
instance of this user on this machine (name, directory, pid, port, workers,
uptime), from the registry in $XDG_RUNTIME_DIR/hotreload/ (or ~/.hotreload/
when XDG_RUNTIME_DIR is not set); stale entries are removed.`,
);
