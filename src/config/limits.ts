/**
 * Upper bounds on every count and duration a user, a config file or a
 * control client can ask for. They keep one bad value (`scale 1e308`,
 * `count: 1000000`, `--grace 99999999999`) from forking the machine to
 * death, starving the supervisor's loop, or overflowing a timer.
 */

/** Most workers one instance runs (`--workers`, `scale`, SIGTTIN). */
export const MAX_WORKERS = 1024;

/** Most instances of one custom process (`count`). */
export const MAX_PROCESS_COUNT = 64;

/** Most custom-process instances of one supervisor, all processes together. */
export const MAX_PROCESS_INSTANCES = 256;

/** Longest duration in milliseconds (one day); timers overflow at 2^31 - 1. */
export const MAX_MS = 86_400_000;

/** Most control connections served at once; more are closed at once. */
export const MAX_CONTROL_CONNECTIONS = 32;

/** How long a control client may take to send its request line. */
export const CONTROL_READ_TIMEOUT_MS = 5_000;

/** Largest control request line (a `send` message included). */
export const MAX_CONTROL_REQUEST_BYTES = 256 * 1024;

/**
 * What an instance or process name may be: it names files and log lines, and
 * 64 characters keep the control socket's path within 108 bytes wherever the
 * project is.
 */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** {@link NAME} in words, for error messages. */
export const NAME_RULE =
  'at most 64 letters, digits, ".", "_" or "-", starting with a letter or digit';
