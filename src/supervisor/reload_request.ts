/**
 * What a reload covers and why it happens, and how the requests that arrive
 * during a rollout merge into exactly one follow-up (coalescing: a burst of
 * saves, `reload` commands and SIGHUPs reloads once more, not once each).
 */
import type { ControlReply } from "../control/protocol.ts";

/** What a reload covers and why it happens. */
export interface ReloadRequest {
  reason: string;
  files: string[];
  /** For a change: which rules chose what reloads (reload_scope.ts), for the log. */
  why?: string;
  workers: boolean;
  processes: boolean;
  /** With `processes`: only these (by name); undefined: every process that reloads with the code. */
  processNames?: string[];
  /** Called with the outcome (the control socket's `reload` waits on it). */
  reply?: (reply: ControlReply) => void;
}

/** One request covering both: every reason, file and part, and every waiter hears the outcome. */
export function coalesce(
  previous: ReloadRequest | undefined,
  request: ReloadRequest,
): ReloadRequest {
  const waiters = [previous?.reply, request.reply].filter((r) => r !== undefined);
  return {
    reason: [...new Set([...(previous?.reason.split(", ") ?? []), request.reason])].join(", "),
    files: [...new Set([...(previous?.files ?? []), ...request.files])].sort(),
    // The follow-up's log line says why, as each queued request's did.
    why: [previous?.why, request.why].filter((why) => why !== undefined).join("; ") ||
      undefined,
    workers: (previous?.workers ?? false) || request.workers,
    processes: (previous?.processes ?? false) || request.processes,
    processNames: mergeNames(previous, request),
    reply: waiters.length === 0 ? undefined : (reply) => waiters.forEach((w) => w(reply)),
  };
}

/** The processes two requests reload together: undefined (all) when either reloads all. */
function mergeNames(a: ReloadRequest | undefined, b: ReloadRequest): string[] | undefined {
  const all = [a, b].some((r) => r?.processes && r.processNames === undefined);
  if (all) return undefined;
  return [...new Set([...(a?.processNames ?? []), ...(b.processNames ?? [])])];
}

/** Files a spare reads only when released: the app's own modules. */
const SOURCE = /\.(ts|tsx|mts|cts|js|jsx|mjs|cjs)$/;

/**
 * A spare has read everything but the app's modules when it started: when
 * anything else may have changed (deno.json, an import map, the lock, an env
 * file, or a reload without a list of files), it must not serve the new
 * generation.
 */
export function staleForSpares(request: ReloadRequest): boolean {
  return request.files.length === 0 || request.files.some((file) => !SOURCE.test(file));
}
