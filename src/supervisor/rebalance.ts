/**
 * Keep-alive clients spread over the workers. A keep-alive connection stays
 * on the worker it landed on, and without steering where it lands is the
 * kernel's hash of the client's address and port: 16 connections over 4
 * workers are within ±25 % of the mean (3 to 5 each) only about one time in
 * five (multinomial), and after a reload, when every client reconnects at once,
 * one worker can serve twice its share of them for as long as they stay.
 * Steered, the program hands new connections out in turn
 * (handover/program.ts), but a reload's clients reconnect as soon as they
 * are sent on (runtime/forward.ts), onto the new workers ready by then: so
 * this runs in every mode.
 *
 * Once the serving workers change (a start, a reload, a scale, a
 * replacement) and stay (no reload runs, or every new worker of the one
 * that runs serves), the supervisor counts each serving
 * worker's established connections (port_owners.ts) every
 * ROUND_MS; until the counts are at most one apart, each worker above the
 * mean lets one connection go (SIGCONT: its next answer within SHED_MS
 * says `Connection: close`, however often it was asked, runtime/service.ts;
 * the client reconnects, and the kernel places it anew), for at most
 * MAX_ROUNDS; after that it looks again every CHECK_MS. Off with
 * `--no-rebalance`, and with `--sticky` (a client reconnects to the
 * worker it left).
 * Counting costs what the host's TCP table is long. /proc/net/tcp lists
 * every socket of the host, TIME_WAIT too: after wrk had made a new
 * connection per request for 4 s it held 14,000 lines, which the kernel took
 * 23 ms to write and the supervisor 10 ms to scan (50 before the scan read
 * each line's fields at their places). So counts come from netlink
 * (sock_diag.ts: the kernel skips sockets in other states; 5 ms with 28,000
 * TIME_WAIT sockets), /proc only where that cannot be used; looks are spaced
 * to keep the counting within READ_SHARE of a core (a count that took 33 ms
 * of CPU: the next at the earliest 3.3 s later), FOLLOW_SHARE while a
 * change's clients are spread again. The cost is the CPU time a count took,
 * not the time on the clock: beside a reload's starting processes, and on a
 * busy machine, the supervisor waits for a core in the middle of a count
 * (measured: 14-94 ms by the clock for 5-12 ms of CPU). Spaced by the clock,
 * rounds after a reload came 1.4-5 s apart there, and 16 clients on 4 workers
 * were not spread again 15 s later. Once the connections are spread, and
 * FOLLOW_MS after the serving workers changed, the next look is CHECK_MS
 * away.
 *
 * A worker lets a connection go only if both its count of every connection
 * and its count of those that lasted from the last look to this one are
 * above the mean (toShed, for each). Lasting ones: a client that makes a new
 * connection per request (`Connection: close`, health checks) leaves nothing
 * on a worker to spread, but a snapshot of its connections, which come and
 * go in milliseconds, is uneven more often than not. Counted as they were,
 * wrk's 64 such connections on 2 workers kept the rounds going for as long
 * as it ran: a count every 0.8-0.9 s (READ_SHARE) and a connection let go
 * every 2-3 s: 0.2-2 % of the core the workers serve on spent by the
 * supervisor, per 5 s window (`Connection: close`, 2 workers pinned to one
 * core); and beside a few keep-alive clients, such snapshots would keep
 * moving those. Every connection too: a client let go at one look has
 * reconnected by the next, and must count where it landed. (Counting only
 * the lasting ones left it out for one look: each move took two looks, and
 * without steering, where the kernel may put it back on the same worker, 16
 * clients were not spread at the start within 15 s on a busy machine.)
 * After a reload every connection is new, so the first look only notes them
 * and shedding starts at the next (a round later, at FOLLOW_SHARE). Uneven
 * counts of connections that did not last (new clients, or ones that come
 * and go) are looked at again RECHECK_MS later, then twice as long each time
 * they stay so, up to CHECK_MS: new keep-alive clients are spread within
 * about a second, and clients that come and go cost a look every CHECK_MS.
 *
 * Without `tcp_migrate_req`, a reconnect that meets a listener closing in
 * that instant is reset (docs/handover.md). Without steering, a reload
 * closes the old listeners at its switch, before its last new worker serves;
 * rebalancing pauses from the moment a reload begins until then, so the
 * reconnects it causes never meet one; while watching too (measured: 0
 * failed of about 1.8 million keep-alive requests over 100 edits, either
 * way).
 */
import type { Child } from "../child/child.ts";
import { log } from "../log/mod.ts";

/** How often connections are counted while they are not spread. */
export const ROUND_MS = 100;
/** Rounds in a row at most, then a look every CHECK_MS. */
export const MAX_ROUNDS = 100;
/**
 * How often spread connections are looked at again: new clients are placed
 * as evenly as the kernel's hash (or the program, steered) places them, so
 * only a slow drift is left to find, and each look reads the whole TCP table.
 */
export const CHECK_MS = 30_000;
/** After the serving workers changed: their clients reconnect first. */
export const SETTLE_MS = 200;
/**
 * After the serving workers changed, looks come every ROUND_MS for this long
 * even while the counts look spread: the clients of the workers that left
 * are still reconnecting (an idle one once the close window ends, 5 s at
 * most by default), and a look that came too early would otherwise wait
 * CHECK_MS for the next.
 */
export const FOLLOW_MS = 10_000;
/** How many of the last counts' durations the spacing goes by (their least: see `advance`). */
const COSTS_KEPT = 5;
/** The share of one core the counting may take at most (see the module text). */
export const READ_SHARE = 0.01;
/**
 * The share while a change of the serving workers is followed (FOLLOW_MS):
 * after a reload (a scale, a replacement) the
 * clients of the workers that left reconnect at once, onto the new workers
 * ready by then, and spreading them again is worth more of a core, for a
 * few seconds, than a look for drift ever is. A count takes 4-7 ms of CPU
 * here with an empty table (the kernel walks every bucket of its
 * 262,144-entry established table, once per address family): at READ_SHARE
 * the rounds came 0.4-0.7 s apart, and 16 clients took 5-7 s to spread over
 * 4 new workers; at this share, rounds come every ROUND_MS. Not at the first
 * start: clients arrive as they come and the kernel places them, and a
 * server's first seconds are what a throughput bench measures (there 5 % of
 * the core the workers share would be 5 % of their rate).
 */
export const FOLLOW_SHARE = 0.05;
/** Fewer connections than this per worker: nothing worth spreading. */
const MIN_PER_WORKER = 2;
/** Uneven counts of connections that did not last: the first look again (see the module text). */
export const RECHECK_MS = 1_000;
/**
 * Rounds in a row after which no count moved: then it stops until they do.
 * Connections that never get another answer (WebSockets, event streams)
 * cannot be let go this way, and asking again would change nothing.
 */
const STUCK_ROUNDS = 10;

/**
 * Which workers let one connection go, given each one's count of
 * connections: those above the mean (rounded down), until the counts are as
 * even as they can be (at most one apart: 4/4/4/4 for 16 on 4 workers; a
 * worker with 5 of them and one with 3 serve 5 / 3 of the load, since each
 * connection keeps asking at its own pace), or there are too few to spread.
 */
export function toShed(counts: readonly number[]): boolean[] {
  const total = counts.reduce((sum, count) => sum + count, 0);
  const none = counts.map(() => false);
  if (counts.length < 2 || total < counts.length * MIN_PER_WORKER) return none;
  if (Math.max(...counts) - Math.min(...counts) <= 1) return none;
  const mean = Math.floor(total / counts.length);
  return counts.map((count) => count > mean);
}

/** What rebalancing reads of the supervisor. */
export interface RebalanceSeam {
  /** The workers in service now, or undefined while they change (a reload before every new one serves). */
  serving(): Child[] | undefined;
  /**
   * Each pid's established connections on the workers' ports, by socket inode (World), and
   * the CPU time counting took.
   */
  connections(pids: number[]): { held: Map<number, readonly string[]>; cpuMs: number };
}

export class Rebalancer {
  /** The serving workers' pids the last round saw. */
  #serving = "";
  #rounds = 0;
  #nextAt = Infinity;
  /** Connections let go since the workers' clients were last spread. */
  #shed = 0;
  /** The counts the last round saw, and rounds in a row they stayed the same. */
  #last = "";
  #stuck = 0;
  /** The counts it gave up at (STUCK_ROUNDS): it waits for them to change. */
  #gaveUpAt = "";
  /** Until when looks follow the last change of the serving workers (FOLLOW_MS). */
  #followUntil = 0;
  /** True once workers have served: each later change of them is followed at FOLLOW_SHARE. */
  #servedBefore = false;
  /** Whether the change being followed is one of serving workers (not the first start). */
  #afterChange = false;
  /** The CPU time the last counts took, ms. */
  readonly #costs: number[] = [];
  /** The connections the last look saw: those seen again have lasted (see the module text). */
  #seen = new Set<string>();
  /** The wait before the next look at uneven counts of connections that did not last. */
  #recheckMs = RECHECK_MS;

  constructor(private readonly seam: RebalanceSeam) {}

  /** One look, when one is due: see the module text. */
  advance(now: number): void {
    const serving = this.seam.serving();
    if (!serving) {
      // Not now (a reload runs): looked at again once the serving workers are known.
      this.#serving = "";
      this.#nextAt = Infinity;
      return;
    }
    const key = serving.map((child) => child.pid).join(",");
    if (key !== this.#serving) {
      this.#serving = key;
      this.#afterChange = this.#servedBefore;
      this.#servedBefore = true;
      // What the last workers' rounds saw and did is not theirs to report.
      this.#gaveUpAt = "";
      this.#last = "";
      this.#stuck = 0;
      this.#shed = 0;
      this.#recheckMs = RECHECK_MS;
      this.#rounds = MAX_ROUNDS;
      this.#nextAt = now + SETTLE_MS;
      this.#followUntil = now + FOLLOW_MS;
      return;
    }
    if (now < this.#nextAt) return;
    if (serving.length < 2) {
      // One worker: nothing to spread, and no reason to read /proc.
      this.#nextAt = now + CHECK_MS;
      return;
    }
    const { held, cpuMs } = this.seam.connections(serving.map((child) => child.pid));
    // The next look no sooner than keeps the counting within its share of a core. By the
    // least of the last few costs: the process's other threads (V8's collector, the watcher's)
    // can add their CPU time to one count's, and must not hold rebalancing back for seconds.
    this.#costs.push(cpuMs);
    if (this.#costs.length > COSTS_KEPT) this.#costs.shift();
    const cost = Math.min(...this.#costs);
    const after = (ms: number, share = READ_SHARE) => now + Math.max(ms, cost / share);
    const hurry = this.#afterChange && now < this.#followUntil;
    const share = hurry ? FOLLOW_SHARE : READ_SHARE;
    const seenBefore = this.#seen;
    this.#seen = new Set([...held.values()].flat());
    const own = serving.map((child) => held.get(child.pid) ?? []);
    const counts = own.map((inodes) => inodes.length);
    const uneven = toShed(counts);
    const lasting = toShed(
      own.map((inodes) => inodes.filter((inode) => seenBefore.has(inode)).length),
    );
    const shed = uneven.map((above, i) => above && lasting[i]);
    const spread = counts.join("/");
    this.#stuck = spread === this.#last ? this.#stuck + 1 : 0;
    this.#last = spread;
    const stuck = this.#stuck >= STUCK_ROUNDS;
    const givenUp = stuck || spread === this.#gaveUpAt;
    if (stuck) this.#gaveUpAt = spread;
    const following = !shed.includes(true) && now < this.#followUntil;
    if (uneven.includes(true) && !shed.includes(true) && !givenUp) {
      // Uneven, but those above the mean did not last: new clients, or ones that come and go.
      this.#nextAt = following ? after(ROUND_MS, share) : after(this.#recheckMs);
      if (!following) this.#recheckMs = Math.min(2 * this.#recheckMs, CHECK_MS);
      return;
    }
    if (!shed.includes(true) || this.#rounds === 0 || givenUp) {
      // Spread, out of rounds, or stuck: a look every CHECK_MS, with new rounds if need be; while
      // following a change of the serving workers, every ROUND_MS.
      if (this.#shed > 0) {
        const how = uneven.includes(true) ? "still not spread" : "spread";
        log.info(
          "workers.spread",
          `keep-alive connections ${how} (${spread}) after ${this.#shed} were let go to reconnect`,
          { role: "supervisor", shed: this.#shed },
        );
        this.#shed = 0;
      }
      this.#rounds = MAX_ROUNDS;
      this.#stuck = 0;
      this.#recheckMs = RECHECK_MS;
      this.#nextAt = following ? after(ROUND_MS, share) : after(CHECK_MS);
      return;
    }
    this.#recheckMs = RECHECK_MS;
    this.#rounds--;
    this.#nextAt = after(ROUND_MS, share);
    serving.forEach((child, i) => {
      if (!shed[i]) return;
      child.shed();
      this.#shed++;
    });
  }

  /**
   * The supervisor stops: no look is due any more. It calls `advance` no
   * more, and a deadline left in the past would wake its loop at once, again
   * and again.
   */
  stop(): void {
    this.#nextAt = Infinity;
  }

  /** When the next look is due (Infinity when none is). */
  nextDeadline(): number {
    return this.#nextAt;
  }
}
