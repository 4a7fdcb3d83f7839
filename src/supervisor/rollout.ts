/**
 * One rolling reload: which generation it rolls out, what it covers (workers,
 * custom processes), who waits for its result, and what arrived while it ran
 * (coalesced into exactly one follow-up).
 */
import type { ControlReply } from "../control/protocol.ts";

/** What a reload covers and why it happens. */
export interface ReloadRequest {
  reason: string;
  files: string[];
  workers: boolean;
  processes: boolean;
  /** Called with the outcome (the control socket's `reload` waits on it). */
  reply?: (reply: ControlReply) => void;
}

export class Rollout {
  /** True once the first worker of this generation (the canary) became ready. */
  canaryPassed = false;
  /** True when workers were serving as it began: it replaces them (else it starts them). */
  replacing = true;
  /** Workers first; custom processes once every worker runs the new generation. */
  phase: "workers" | "processes" = "workers";
  /** True once the custom processes' restarts have been queued. */
  processesQueued = false;
  readonly #waiters: Array<(reply: ControlReply) => void> = [];
  #followUp?: ReloadRequest;

  constructor(
    readonly generation: number,
    readonly request: ReloadRequest,
    /** Clock time the rollout began. */
    readonly startedAt: number,
  ) {
    if (request.reply) this.#waiters.push(request.reply);
    if (!request.workers) this.phase = "processes";
  }

  /** Remembers a trigger that arrived during this rollout. */
  queueFollowUp(request: ReloadRequest): void {
    const previous = this.#followUp;
    const waiters = [previous?.reply, request.reply].filter((r) => r !== undefined);
    this.#followUp = {
      reason: [...new Set([...(previous?.reason.split(", ") ?? []), request.reason])].join(", "),
      files: [...new Set([...(previous?.files ?? []), ...request.files])].sort(),
      workers: (previous?.workers ?? false) || request.workers,
      processes: (previous?.processes ?? false) || request.processes,
      reply: waiters.length === 0 ? undefined : (reply) => waiters.forEach((w) => w(reply)),
    };
  }

  /** The single rollout to run after this one, if anything arrived meanwhile. */
  get followUp(): ReloadRequest | undefined {
    return this.#followUp;
  }

  /** Tells everyone waiting how it ended. */
  settle(reply: ControlReply): void {
    for (const waiter of this.#waiters.splice(0)) waiter(reply);
  }

  /**
   * What happened, truthfully: `reloaded 4 workers in 312 ms (generation 7; 2
   * files: src/a.ts, src/b.ts)`; `generation 2 started 2 workers; all ready
   * in 140 ms (1 file: main.ts)` when nothing was serving before; and how
   * many are ready when some of the new workers failed.
   */
  summary(workers: number, ready: number, processes: number, now: number): string {
    const ms = Math.round(now - this.startedAt);
    const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
    const { files, reason } = this.request;
    const cause = files.length > 0 ? describeChanges(files) : reason;
    const extra = this.request.processes && processes > 0
      ? ` and ${processes} process${processes === 1 ? "" : "es"}`
      : "";
    if (!this.request.workers) {
      return `reloaded ${
        extra ? extra.slice(5) : "nothing"
      } in ${ms} ms (generation ${this.generation}; ${cause})`;
    }
    if (ready < workers) {
      return `generation ${this.generation}: ${ready} of ${plural(workers, "worker")} ready in ` +
        `${ms} ms, the others failed and are retried${
          extra ? `;${extra} reloaded` : ""
        } (${cause})`;
    }
    if (!this.replacing) {
      return `generation ${this.generation} started ${plural(workers, "worker")}${extra}; all ` +
        `ready in ${ms} ms (${cause})`;
    }
    return `reloaded ${
      plural(workers, "worker")
    }${extra} in ${ms} ms (generation ${this.generation}; ${cause})`;
  }
}

/** `3 files: src/a.ts, src/b.ts, src/c.ts` (at most 5 names); `verb` goes after "files". */
export function describeChanges(files: string[], verb = ""): string {
  const shown = files.slice(0, 5).join(", ");
  const more = files.length > 5 ? `, and ${files.length - 5} more` : "";
  const noun = files.length === 1 ? "file" : "files";
  return `${files.length} ${noun}${verb ? ` ${verb}` : ""}: ${shown}${more}`;
}
