/**
 * File watching for hotreload: one {@linkcode Watcher} interface, two
 * backends — `Deno.watchFs` (inotify) events and a cheap stat poller — with
 * automatic fallback to polling where inotify cannot be trusted.
 *
 * ```ts
 * import { type ChangeBatch, createWatcher } from "./mod.ts";
 * const watcher = await createWatcher({
 *   root: Deno.cwd(),
 *   onBatch: (b: ChangeBatch) => console.log(b.changes),
 * });
 * // watcher.backend is "events" or "poll"; watcher.fallbackReason says why polling
 * await watcher.close();
 * ```
 *
 * The watcher never logs; the caller logs `backend` and `fallbackReason`.
 *
 * @module
 */
import { checkWatchPaths, createWatcherWith, DEFAULT_EXTENSIONS } from "./create.ts";
import type { Watcher, WatchOptions } from "./types.ts";

export type {
  Change,
  ChangeBatch,
  ChangeKind,
  PollOptions,
  Watcher,
  WatchOptions,
} from "./types.ts";
export { checkWatchPaths, DEFAULT_EXTENSIONS };
export { type BackendDecision, type BackendInput, chooseBackend } from "./backend.ts";

/**
 * Start watching. Resolves once the first scan / watch set-up is complete,
 * so every change made after it resolves is reported. Throws (rejects) with
 * a one-line message for bad input: a `--watch` path that does not exist, a
 * bad number, or mode "never" when `Deno.watchFs` fails.
 */
export function createWatcher(options: WatchOptions): Promise<Watcher> {
  return createWatcherWith(options);
}
