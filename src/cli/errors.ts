/**
 * Errors that end a command with a one-line message and a specific exit code.
 * Anything else that escapes a command is a bug and exits 1 with its stack.
 */

/** Exit codes of the `hotreload` command. */
export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  notRunning: 3,
} as const;

/** A failure the user can fix; the message says what is wrong and what to do. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode: number = ExitCode.failure) {
    super(message);
    this.name = "CliError";
  }
}

/** Bad input on the command line or in a config file (exit 2). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.usage);
    this.name = "UsageError";
  }
}

/** A control command found no running instance to act on (exit 3). */
export class NotRunningError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.notRunning);
    this.name = "NotRunningError";
  }
}
