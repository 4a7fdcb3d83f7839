/**
 * What the watcher does when not told otherwise: a leaf module, so that the
 * run settings (config/settings.ts) state the same defaults in their help.
 */

/** Extensions watched when `extensions` is not given. */
export const DEFAULT_EXTENSIONS: readonly string[] = Object.freeze([
  "ts",
  "tsx",
  "js",
  "jsx",
  "mjs",
  "cjs",
  "json",
  "jsonc",
]);

/**
 * The default quiet time of the events backend. Measured (`deno task bench
 * saves`): the longest gap between two inotify events of one save was under
 * 1 ms for an editor's save, an atomic save, `sed -i` or vim, and 3.9 ms for
 * `deno fmt` over 41 files or a `git checkout` of 20: 20 ms keeps each of
 * them in one batch with five times that margin.
 */
export const DEFAULT_EVENTS_DEBOUNCE_MS = 20;
/** The poller's default: its rounds read ctimes and follow up on their own rules (poll.ts). */
export const DEFAULT_POLL_DEBOUNCE_MS = 50;
