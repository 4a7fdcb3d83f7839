/**
 * A worker's place in service, and its count of requests: whether it is
 * draining or held, how many requests it served (for `status` and
 * `--max-requests`), how many are open and relayed (for `draining (2 open)`
 * and the supervisor's kill deadline), and when a request last came while
 * out of service (the close window counts from it).
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */
import type { ChildMessage } from "./protocol.ts";

/**
 * How often a worker in service tells the supervisor its count of requests,
 * when it changed. `hotreload status` asks for the count itself
 * (COUNT_SIGNAL); the metrics and the dashboard read the last one told. Every
 * 50 ms, as before, a worker under load woke the supervisor 20 times a
 * second: 60-70 ms of its CPU in 5 s of wrk against one worker (1.2-1.4 %
 * of the core they were pinned to), against 10 ms now.
 */
export const REPORT_MS = 1000;

/**
 * How long an ask to let a connection go (SIGCONT) stands: the first answer
 * within it lets its connection go. A busy connection answers within
 * milliseconds, and the supervisor asks again at its next look (every 100 ms
 * while the counts are uneven) for as long as they stay so.
 */
export const SHED_MS = 1000;

/**
 * One connection to let go, as the supervisor asks (the supervisor spreading
 * keep-alive clients over the workers: supervisor/rebalance.ts). One at
 * most: the supervisor asks again at each look that still finds this worker
 * above the mean, and asks made while its connections were idle used to pile
 * up (measured: 4, 5, 15 and 10 of 18 idle connections on 4 workers let
 * go at their next request; 2 or 3 since). And only for SHED_MS: a connection quiet
 * that long carries no load worth moving, and a later answer would be let
 * go after the clients were spread again.
 */
export class Shed {
  /** Until when the next answer lets its connection go; 0: none is to. */
  #until = 0;

  /**
   * Whether one was asked for and no answer has come since (the ask may have
   * lapsed): answers check this first, so that without an ask they do not
   * read the clock.
   */
  get asked(): boolean {
    return this.#until !== 0;
  }

  /** Asked at `now`: the next answer until SHED_MS later lets its connection go. */
  ask(now: number): void {
    this.#until = now + SHED_MS;
  }

  /** An answer at `now`: whether it lets its connection go. Either way, none is pending after. */
  take(now: number): boolean {
    const due = this.#until !== 0 && now <= this.#until;
    this.#until = 0;
    return due;
  }
}

/** A worker's service state and request counts: see the module text. */
export class Service {
  /** Leaving for good: requests go on to the serving workers, answers say `Connection: close`. */
  draining = false;
  /**
   * Out of service, not draining yet: a predecessor held until the whole new
   * generation serves (steered, through the settle window too: it may yet be
   * put back). Like a draining worker it sends every request on to the
   * serving workers, so no client gets old code once new code serves; unlike
   * one it does not ask the clients of the answers it gives itself to
   * reconnect yet (but those of a handler that reads no request:
   * `closeOwnAnswer`).
   */
  held = false;
  /**
   * Held, and the whole new generation serves (the supervisor says so):
   * clients may reconnect now and spread over every new worker.
   */
  handedOff = false;
  /** Whether the next answer lets its connection go, as SIGCONT asks (see `Shed`). */
  readonly #shed = new Shed();
  /** Requests being answered (a stream counts until it ends, where that is known). */
  open = 0;
  /** Of those, the ones sent on to a serving worker, whose answers are being relayed. */
  relaying = 0;
  /** When a request last reached this worker while out of service. */
  lastRequestAt = 0;
  #served = 0;
  #reported = 0;
  #reportedAt = 0;
  #reportedOpen = -1;
  #whenNoneOpen: Array<() => void> = [];
  readonly #tell: (message: ChildMessage) => void;
  readonly #maxRequests?: number;
  readonly #accepting: () => boolean;

  /** `accepting`: whether a listener of the worker still accepts (a reload waits for none that does). */
  constructor(
    tell: (message: ChildMessage) => void,
    maxRequests: number | undefined,
    accepting: () => boolean,
  ) {
    this.#tell = tell;
    this.#maxRequests = maxRequests;
    this.#accepting = accepting;
    // Every 50 ms while draining: how many requests are still open, and the count before the
    // worker exits. In service the count goes out once a second at most (REPORT_MS).
    Deno.unrefTimer(setInterval(() => this.#report(), 50));
  }

  /** True while requests should go to the serving workers: draining or held. */
  get outOfService(): boolean {
    return this.draining || this.held;
  }

  /** True while a worker that cannot send requests on should ask its clients to reconnect. */
  get handingOver(): boolean {
    return this.draining || (this.held && this.handedOff);
  }

  /** The supervisor asks for one connection to be let go (SIGCONT). */
  shedOne(): void {
    this.#shed.ask(Date.now());
  }

  /** Whether `closeThis` may say yes: handing over, or asked to let one go (without reading the clock). */
  get mayClose(): boolean {
    return this.handingOver || this.#shed.asked;
  }

  /** Whether this answer asks its client to reconnect: handing over, or one to shed. */
  closeThis(): boolean {
    if (this.handingOver) return true;
    return this.#shed.asked && this.#shed.take(Date.now());
  }

  /**
   * Whether an answer of a handler that reads no request (nothing to send
   * on: serve_handler.ts) asks its client to reconnect: out of service at all,
   * held too, or one to shed. Held until every new worker serves, such a
   * worker would answer with old code for as long as they take to be ready
   * (measured: 171-236 ms per reload, 4 workers on 2 cores).
   */
  closeOwnAnswer(): boolean {
    return this.outOfService || this.closeThis();
  }

  /** A request the app answers here. */
  count(): void {
    this.#served++;
    if (this.#served === this.#maxRequests) {
      // Ask for a replacement; we keep serving until it is ready and we are drained.
      this.#tell({ t: "recycle", reason: `served ${this.#served} requests (--max-requests)` });
    }
  }

  /** A request is open until `done` is called. */
  begin(): void {
    this.open++;
  }

  /** An open request ended. */
  readonly done = (): void => {
    this.open--;
    if (this.open > 0) return;
    for (const resolve of this.#whenNoneOpen) resolve();
    this.#whenNoneOpen = [];
  };

  /** A relayed answer ended (its request's `done` is called too). */
  readonly relayDone = (): void => {
    this.relaying--;
  };

  /** Resolves once no request is open (a node server's close does not wait for keep-alive ones). */
  noneOpen(): Promise<void> {
    return this.open <= 0
      ? Promise.resolve()
      : new Promise((resolve) => this.#whenNoneOpen.push(resolve));
  }

  /** Tells the supervisor how many requests are open and relayed, and whether it still accepts. */
  reportDraining(): void {
    this.#reportedOpen = this.open;
    this.#tell({
      t: "draining",
      open: this.open,
      relaying: Math.min(this.relaying, this.open),
      accepting: this.#accepting(),
    });
  }

  /** Tells the supervisor the count now, asked (COUNT_SIGNAL: `hotreload status` waits for it). */
  answerCount(): void {
    this.#reported = this.#served;
    this.#tell({ t: "requests", served: this.#served, asked: true });
  }

  #report(): void {
    if (this.draining && this.open !== this.#reportedOpen) this.reportDraining();
    if (this.#served === this.#reported) return;
    const now = Date.now();
    if (!this.draining && now - this.#reportedAt < REPORT_MS) return;
    this.#reportedAt = now;
    this.#reported = this.#served;
    this.#tell({ t: "requests", served: this.#served });
  }
}
