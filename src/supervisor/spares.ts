/**
 * Warm spare workers: processes started from the workers' command and
 * environment with no handshake yet, waiting blocked in the preload's
 * synchronous handshake read, before any app module is loaded. A slot that
 * needs a worker releases one (sends its handshake) instead of starting a
 * process, so it reads the app's code only then and runs the newest. New
 * spares start once no worker is starting; a change to anything but the
 * app's modules discards them (they read Deno's config, the import map, the
 * lock file and the env files when they started).
 */
import { type Child, type ChildSpec, describeExit } from "../child/child.ts";
import { log } from "../log/mod.ts";
import { releasedSpec, spareSpec, type WorkerLaunch } from "./child_command.ts";
import { childRow, type SlotSeam, type Usage } from "./slots.ts";
import type { StatusRow } from "../control/protocol.ts";

/** The pause before a spare is started again after one died on its own. */
const SPARE_RETRY_MS = 1000;

/**
 * How long after the last worker became ready spares start. A spare's start
 * (a Deno process loading the worker runtime: 250-300 ms from its start to
 * waiting, here, four at once) would take the CPU from the new workers
 * answering their first requests: in a traced edit, four spares started the
 * moment the last of four new workers was ready, and the first new answer
 * took 29 ms after its request reached the worker. Measured side by side
 * only together with the setsid start (docs/benchmarks.md). Edits seconds
 * apart find them waiting all the same.
 */
export const SPARE_DELAY_MS = 100;

export class Spares {
  readonly #waiting: Child[] = [];
  /** Whether each spare started with the malloc tunables (its release says so). */
  readonly #tunedMalloc = new WeakMap<Child, boolean>();
  /** Spares discarded, until their exit. */
  readonly #stopping = new Set<Child>();
  #desired: number;
  #retryAt = 0;
  /** No spare starts before (see SPARE_DELAY_MS), as last told. */
  #notBefore = 0;

  constructor(private readonly options: WorkerLaunch & SlotSeam) {
    this.#desired = options.spares;
  }

  /** Spares being discarded (still live children). */
  stopping(): Child[] {
    return [...this.#stopping];
  }

  /** Makes a waiting spare the worker `spec` describes; undefined when none waits. */
  release(spec: ChildSpec): Child | undefined {
    const spare = this.#waiting.shift();
    spare?.release(releasedSpec(spec, this.#tunedMalloc.get(spare) ?? false));
    return spare;
  }

  /**
   * Starts spares until as many wait as wanted; not while `starting` (once
   * any worker was ready), nor before `notBefore`.
   */
  topUp(now: number, starting: boolean, notBefore = 0): void {
    // On two cores a new spare would slow the very switch it serves.
    if (starting) return;
    this.#notBefore = notBefore;
    while (this.#waiting.length < this.#desired && now >= Math.max(this.#retryAt, notBefore)) {
      try {
        const { spec, tunedMalloc } = spareSpec(this.options);
        const spare = this.options.spawn(spec, this.options.listener);
        this.#tunedMalloc.set(spare, tunedMalloc);
        this.#waiting.push(spare);
      } catch {
        this.#retryAt = now + SPARE_RETRY_MS;
      }
    }
  }

  /** As many spares wanted as `count` (--spares auto follows the workers): surplus ones end now. */
  resize(count: number): void {
    this.#desired = count;
    for (const spare of this.#waiting.splice(count)) {
      this.#stopping.add(spare);
      spare.kill();
    }
  }

  /** Ends the waiting spares (new ones follow, unless `forGood`: stopping). */
  discard(forGood = false): void {
    if (forGood) this.#desired = 0;
    for (const spare of this.#waiting.splice(0)) {
      this.#stopping.add(spare);
      spare.kill();
    }
  }

  /** A child exited: true when it was a spare (one that died on its own is replaced after a pause). */
  onExit(child: Child, status: Deno.CommandStatus): boolean {
    if (this.#stopping.delete(child)) return true;
    const at = this.#waiting.indexOf(child);
    if (at === -1) return false;
    this.#waiting.splice(at, 1);
    this.#retryAt = this.options.clock.now() + SPARE_RETRY_MS;
    child.releaseOutput(true);
    log.warn(
      "worker.spare-exited",
      `a spare (pid ${child.pid}) exited with ${describeExit(status)}; starting another`,
      { role: "worker" as const, id: child.spec.id, pid: child.pid },
    );
    return true;
  }

  /** When a spare is due to start again, if one is missing. */
  deadlines(): number[] {
    return this.#waiting.length < this.#desired ? [Math.max(this.#retryAt, this.#notBefore)] : [];
  }

  /** A status row for each waiting spare. */
  statusRows(usage: Usage, now: number): StatusRow[] {
    return this.#waiting.map((spare) => ({
      ...childRow("worker", "-", spare, 0, usage, now),
      role: "spare",
      state: "spare",
      generation: null,
      requests: null,
    }));
  }
}
