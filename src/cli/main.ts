/** Dispatches a command and turns its failures into one line and an exit code. */
import { runCommand } from "./commands/run.ts";
import { listCommand } from "./commands/list.ts";
import { logsCommand } from "./commands/logs.ts";
import { reloadCommand } from "./commands/reload.ts";
import { scaleCommand } from "./commands/scale.ts";
import { statusCommand } from "./commands/status.ts";
import { monitCommand } from "./commands/monit.ts";
import { restartCommand } from "./commands/restart.ts";
import { sendCommand } from "./commands/send.ts";
import { stopCommand } from "./commands/stop.ts";
import { upgradeCommand } from "./commands/upgrade.ts";
import { type ErrorKind, HotreloadError, UsageError } from "../errors.ts";
import { MAIN_HELP, VERSION } from "./help.ts";
import { nearest } from "../config/nearest.ts";
import { checkOwnDeno } from "./deno_version.ts";

/** The exit code of each kind of error (0 otherwise; documented in the README). */
const EXIT_CODE: Record<ErrorKind, number> = { failure: 1, usage: 2, "not-running": 3 };

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  run: runCommand,
  stop: stopCommand,
  reload: reloadCommand,
  restart: restartCommand,
  send: sendCommand,
  status: statusCommand,
  monit: monitCommand,
  scale: scaleCommand,
  upgrade: upgradeCommand,
  list: listCommand,
  logs: logsCommand,
  // `pm2 start`: run in the background.
  start: (argv) => runCommand(["--detach", ...argv]),
};

/** Runs the command line `argv` and returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    // Before anything else: under an older Deno, commands fail far from the cause (a missing
    // Deno API deep in `run`), and may leave files behind in .hotreload/.
    checkOwnDeno();
    if (command === undefined || command === "help" || command === "-h" || command === "--help") {
      console.log(MAIN_HELP);
      return 0;
    }
    if (command === "--version" || command === "-V" || command === "version") {
      console.log(`hotreload ${VERSION}`);
      return 0;
    }
    const handler = COMMANDS[command];
    if (!handler) {
      const near = nearest(command, Object.keys(COMMANDS));
      throw new UsageError(
        `unknown command "${command}"; ` +
          (near
            ? `did you mean "${near}"?`
            : `commands: ${Object.keys(COMMANDS).join(", ")} (see "hotreload --help")`),
      );
    }
    return await handler(rest);
  } catch (error) {
    if (error instanceof HotreloadError) {
      // A message that names hotreload already ("hotreload needs Deno 2.7 ...") is not prefixed.
      console.error(
        error.message.startsWith("hotreload ") ? error.message : `hotreload: ${error.message}`,
      );
      return EXIT_CODE[error.kind];
    }
    throw error;
  }
}
