/** Help texts; `run`'s option list is generated from the option table. */
import { flagText, helpText, SETTINGS } from "../config/settings.ts";

export const VERSION = "0.1.0";

/** `hotreload --help`. */
export const MAIN_HELP =
  `hotreload ${VERSION} — run a Deno app as N workers on one port, reload on change

Usage:
  hotreload run <entry> [options] [deno flags] [-- app args]   start the app
  hotreload stop [--name <name>] [--fast] [--timeout <ms>]     stop a running instance
  hotreload reload [--name <name>] [--workers] [--processes]   rolling reload of a running instance
  hotreload restart <process> [--name <name>]                  warm restart of a custom process
  hotreload send <process> '<json>' [--name <name>]            message to a custom process
  hotreload status [--name <name>] [--json]                    what runs, with memory and CPU
  hotreload scale <n> [--name <name>]                          change the number of workers
  hotreload upgrade [--name <name>] [-- <run args>]            replace the supervisor (takeover)
  hotreload list [--json]                                      instances recorded here

Signals to the supervisor: TERM/INT graceful stop, QUIT immediate stop, HUP rolling reload,
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

const FLAG_WIDTH = 32;
const HELP_WIDTH = 100 - FLAG_WIDTH - 3;

/** `hotreload run --help`: every line fits 100 columns. */
export function runHelp(): string {
  const rows = SETTINGS.flatMap((setting) => {
    const flag = `${setting.short ? "" : "    "}${flagText(setting)}`;
    const help = wrap(helpText(setting), HELP_WIDTH);
    if (flag.length > FLAG_WIDTH) {
      return [`  ${flag}`, ...help.map((line) => `  ${"".padEnd(FLAG_WIDTH)} ${line}`)];
    }
    return help.map((line, i) => `  ${(i === 0 ? flag : "").padEnd(FLAG_WIDTH)} ${line}`);
  });
  return `Usage: hotreload run <entry> [options] [deno flags] [-- app args]

Runs <entry> as worker processes sharing one port (SO_REUSEPORT) and reloads
them, new ones ready first, when files change. Options and Deno flags may come before
or after the entry; app arguments only after "--". Settings can also live in
hotreload.json or under "hotreload" in deno.json; flags win over the file.

Options:
${rows.join("\n")}

Deno flags (-A, --allow-*, --deny-*, --env-file, --import-map, --lock, --check,
--cached-only, --v8-flags, --unstable-*, -c/--config, ...) are passed to every
worker, which gets exactly those permissions.`;
}

/** `hotreload stop --help`. */
export const STOP_HELP = `Usage: hotreload stop [--name <name>] [--fast] [--timeout <ms>]

Stops the instance running from this directory gracefully (workers finish
their requests, then the custom processes stop) and waits until it is gone.
Without --name it acts on the only instance running here. Exits 3 when none
is running.

Options:
      --name <name>        the instance to stop
      --fast               kill every child at once instead of draining
      --timeout <ms>       how long to wait for it to exit (default: twice its grace + 10000)
  -h, --help               show this help`;

/** `hotreload reload --help`. */
export const RELOAD_HELP = `Usage: hotreload reload [--name <name>] [--workers] [--processes]

Rolling reload of the instance running from this directory, and waits for its
result: each worker is replaced by one running the current code, the
replacement ready before its predecessor drains; then the custom processes
with "reload": true restart one at a time. If the new code fails to start,
the old workers keep serving and the command exits 1 with the error. Exits 3
when none is running. (SIGHUP to the supervisor does the same; SIGUSR2 only
the custom processes.)

Options:
      --name <name>        the instance to reload
      --workers            reload only the workers
      --processes          reload only the custom processes
  -h, --help               show this help`;

/** `hotreload restart --help`. */
export const RESTART_HELP = `Usage: hotreload restart <process> [--name <name>]

Warm restart of every instance of a custom process, one at a time: each stops
gracefully (its onShutdown runs) and starts again with the current code.
SIGTERM to one instance's pid restarts just that one. Exits 3 when no custom
process has that name.

Options:
      --name <name>        the instance (of hotreload) to act on
  -h, --help               show this help`;

/** `hotreload send --help`. */
export const SEND_HELP = `Usage: hotreload send <process> '<json>' [--name <name>]

Delivers a JSON message to the onMessage handler of every instance of a
custom process (through its stdin). Exits 3 when no such process runs.

Options:
      --name <name>        the instance (of hotreload) to act on
  -h, --help               show this help`;

/** `hotreload status --help`. */
export const STATUS_HELP = `Usage: hotreload status [--name <name>] [--json]

Shows the supervisor (pid, uptime, watcher, last reload) and one row per child:
role, name, pid, state (starting, ready, draining, backoff, stopped),
generation, uptime, restarts, memory (RSS), CPU % and requests served.
Exits 3 when no instance is running.

Options:
      --name <name>        the instance to ask
      --json               the same as JSON (stable; see the README)
  -h, --help               show this help`;

/** `hotreload scale --help`. */
export const SCALE_HELP = `Usage: hotreload scale <n> [--name <name>] [--timeout <ms>]

Changes the number of workers (1 to 1024): new ones start and join once ready,
removed ones drain. Waits until exactly <n> workers are ready and reports; exits
1 when that takes longer than --timeout (default 60000). SIGTTIN / SIGTTOU to the
supervisor add / remove one. Exits 3 when no instance is running.

Options:
      --name <name>        the instance to scale
      --timeout <ms>       how long to wait for the workers (default 60000)
  -h, --help               show this help`;

/** `hotreload upgrade --help`. */
export const UPGRADE_HELP =
  `Usage: hotreload upgrade [--name <name>] [--timeout <ms>] [-- <run args>]

Replaces the running supervisor without a dropped request: it starts its own
successor, "hotreload run --takeover" with its own run arguments (or those after
"--"), through the executable at its path (replace the binary or Deno first).
The successor's workers start beside the old ones; once they have settled, the
old instance stops gracefully. Under systemd the successor runs in the service's
cgroup and becomes its main process. Waits until the old supervisor is gone;
exits 1 if the successor could not take over (the old instance keeps serving).
Exits 3 when no instance is running.

Options:
      --name <name>        the instance to upgrade
      --timeout <ms>       how long to wait for the old supervisor to exit once taken over
                           (default: twice its grace and 10 s)
  -h, --help               show this help`;

/** `hotreload list --help`. */
export const LIST_HELP = `Usage: hotreload list [--json]

Lists the instances recorded under .hotreload/ in this directory, running or
stale (their supervisor died without cleaning up).

Options:
      --json               the same as JSON
  -h, --help               show this help`;
