/**
 * `hotreload status` counts every request answered before it was asked.
 * Workers tell their count at most every 50 ms (runtime/service.ts), and on
 * a busy machine that timer fires late; so before it answers, the supervisor
 * asks each worker past its start for its count now (Child.askCount) and
 * waits for every answer or exit, at most ANSWER_MS: a worker whose event
 * loop is blocked must not hang `status` (its last count is shown then).
 */
import type { Child } from "../child/child.ts";

/** How long a status waits for the workers' counts. */
export const ANSWER_MS = 250;

interface Ask {
  /** The workers asked that have not answered yet. */
  waiting: Set<Child>;
  deadline: number;
  answer: () => void;
}

/** The status requests waiting for the workers' counts. */
export class CountAsks {
  #asks: Ask[] = [];

  /** Asks `children` for their counts; `answer` runs once they all answered (now, if none was asked). */
  ask(children: Iterable<Child>, now: number, answer: () => void): void {
    const waiting = new Set([...children].filter((child) => child.askCount()));
    if (waiting.size === 0) return answer();
    this.#asks.push({ waiting, deadline: now + ANSWER_MS, answer });
  }

  /** `child` answered with its count, or exited: it is waited for no more. */
  answered(child: Child): void {
    for (const ask of this.#asks) ask.waiting.delete(child);
    this.#answer((ask) => ask.waiting.size === 0);
  }

  /** Answers every ask that waited until `now` (Infinity: all of them, the instance is gone). */
  advance(now: number): void {
    this.#answer((ask) => ask.deadline <= now);
  }

  /** When the next ask stops waiting, if one waits. */
  nextDeadline(): number {
    return Math.min(Infinity, ...this.#asks.map((ask) => ask.deadline));
  }

  #answer(due: (ask: Ask) => boolean): void {
    const answering = this.#asks.filter(due);
    if (answering.length === 0) return;
    this.#asks = this.#asks.filter((ask) => !due(ask));
    for (const ask of answering) ask.answer();
  }
}
