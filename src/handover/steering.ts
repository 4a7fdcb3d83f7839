/**
 * Steering: the supervisor decides which workers' listeners get new
 * connections. A worker that joins gets a key in the program's listeners map
 * (bpf.ts) and keeps it while it serves: its socket (listeners.ts), a
 * duplicate taken with pidfd_getfd and closed at once (the map holds the socket itself; a
 * duplicate kept open here would keep the listener alive after its worker
 * closed it, with nobody to accept). `steer(workers)` then writes the keys
 * in use into slots[1..n], then n into slots[0], and only then clears the
 * keys of the workers that left: every slot below the count points at a
 * worker of the old or the new set at every moment, and a worker is out
 * before the caller tells it to drain.
 *
 * When a worker's listener cannot be found, the count goes to 0: the kernel
 * then spreads connections over every listener, as without steering; never
 * fewer listeners than without it.
 *
 * @module
 */
import { MAX_STEERED, type SteeringObjects } from "./bpf.ts";
import type { Linux } from "./linux.ts";
import { findListener } from "./listeners.ts";

/** A worker that should take new connections: its pid and the port it serves (if known). */
export interface SteeredWorker {
  pid: number;
  port?: number;
}

/** A steered worker's listener: its key in the map, and its address (its reuseport group). */
interface Member {
  key: number;
  address: string;
}

export class Steering {
  readonly #linux: Linux;
  readonly #objects: SteeringObjects;
  /** Workers whose socket is in the listeners map, by pid. */
  readonly #members = new Map<number, Member>();
  /** The kind of the last problem, to say each kind once. */
  #lastProblem?: string;

  constructor(linux: Linux, objects: SteeringObjects) {
    this.#linux = linux;
    this.#objects = objects;
  }

  /**
   * Makes `workers` the ones that get new connections. Returns undefined, or
   * why they could not all be steered (then none are: the kernel's own spread).
   */
  steer(workers: readonly SteeredWorker[]): string | undefined {
    let problem: string | undefined;
    try {
      if (workers.length > MAX_STEERED) throw new Error(`more than ${MAX_STEERED} workers`);
      const keys = this.#join(workers);
      keys.forEach((key, i) => this.#objects.setSlot(i + 1, key));
      this.#objects.setSlot(0, keys.length);
    } catch (error) {
      problem = (error as Error).message;
      this.#objects.setSlot(0, 0);
    }
    const wanted = new Set(workers.map((worker) => worker.pid));
    for (const [pid, member] of this.#members) {
      if (wanted.has(pid)) continue;
      this.#objects.clearListener(member.key);
      this.#members.delete(pid);
    }
    return problem;
  }

  /** The keys of `workers`' listeners, placing those not in the map yet. */
  #join(workers: readonly SteeredWorker[]): number[] {
    let group: string | undefined;
    const keys: number[] = [];
    for (const worker of workers) {
      const member = this.#members.get(worker.pid) ?? this.#place(worker, group);
      group ??= member.address;
      if (member.address !== group) {
        throw new Error(`worker pid ${worker.pid} listens on another address than the others`);
      }
      keys.push(member.key);
    }
    return keys;
  }

  /**
   * Finds the worker's listener and puts it at a free key, attaching the
   * program to its group on the way; the duplicate is closed at once.
   */
  #place(worker: SteeredWorker, group: string | undefined): Member {
    const where = worker.port === undefined ? "its port (none reported)" : `port ${worker.port}`;
    const pidfd = this.#linux.pidfdOpen(worker.pid);
    try {
      const found = worker.port === undefined
        ? undefined
        : findListener(this.#linux, worker.pid, pidfd, worker.port, group);
      if (!found) throw new Error(`no listener on ${where} in worker pid ${worker.pid}`);
      try {
        const member = { key: this.#freeKey(), address: found.address };
        // Each time: the group is a new one when all its listeners had closed (a restart of all).
        this.#linux.attachReuseportProgram(found.socket, this.#objects.progFd);
        this.#objects.setListener(member.key, found.socket);
        this.#members.set(worker.pid, member);
        return member;
      } finally {
        this.#linux.close(found.socket);
      }
    } finally {
      this.#linux.close(pidfd);
    }
  }

  #freeKey(): number {
    const used = new Set([...this.#members.values()].map((member) => member.key));
    let key = 0;
    while (used.has(key)) key++;
    return key;
  }

  /** Says a kind of problem once (whichever worker it is about), until steering works again. */
  newProblem(problem: string | undefined): string | undefined {
    const kind = problem?.replace(/pid \d+/g, "pid");
    const fresh = kind !== undefined && kind !== this.#lastProblem;
    this.#lastProblem = kind;
    return fresh ? problem : undefined;
  }

  close(): void {
    this.#objects.close();
  }
}
