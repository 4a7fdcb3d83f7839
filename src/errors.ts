/**
 * Errors a user can fix, thrown by any layer: the message says what is wrong
 * and what to do, in one line. Each has a kind; the CLI maps the kind to an
 * exit code (src/cli/main.ts). Anything else that escapes is a bug.
 */

/** What went wrong, as far as the exit code goes. */
export type ErrorKind = "failure" | "usage" | "not-running";

/** A failure the user can fix. */
export class HotreloadError extends Error {
  constructor(message: string, readonly kind: ErrorKind = "failure") {
    super(message);
    this.name = "HotreloadError";
  }
}

/** Bad input on the command line, in a config file or in a control request. */
export class UsageError extends HotreloadError {
  constructor(message: string) {
    super(message, "usage");
    this.name = "UsageError";
  }
}

/** A control command found no running instance (or custom process) to act on. */
export class NotRunningError extends HotreloadError {
  constructor(message: string) {
    super(message, "not-running");
    this.name = "NotRunningError";
  }
}
