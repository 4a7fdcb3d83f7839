/**
 * How a worker's exit is told: the words for one that was asked to go, and
 * the count of workers one error hit, so that broken code that fails every
 * worker the same way is shown once (gunicorn shows it per worker).
 */
import type { Child } from "../child/child.ts";

/**
 * What happened to a worker that was asked to go: drained, stopped before it
 * was ready (its generation may have failed to start), or killed, and why.
 */
export function retiredExit(
  child: Pick<Child, "readyAt" | "killedAt" | "spec">,
  killReason: string | undefined,
  generationFailed: boolean,
): string {
  // Never ready: it did not drain anything.
  if (child.readyAt === undefined) {
    return generationFailed
      ? `of generation ${child.spec.generation}, which failed to start, was stopped`
      : "was stopped before it was ready";
  }
  if (child.killedAt === undefined) return "exited after draining";
  return killReason ? `${killReason}; replaced` : "is gone (killed)";
}

/** The last error shown in full (by its signature), and how many workers it hit since. */
export class SameError {
  #shown?: string;
  #hits = 0;

  /**
   * 0 when `signature` is new (show it); else how many workers it has hit,
   * this one included. An error with no signature is always new.
   */
  hit(signature: string | undefined): number {
    if (signature !== undefined && this.#shown === signature) return ++this.#hits;
    this.#shown = signature;
    this.#hits = 1;
    return 0;
  }

  /** New code: its first error is shown whatever came before. */
  forget(): void {
    this.#shown = undefined;
  }
}
