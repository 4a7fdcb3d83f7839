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
 * Every port the workers listen on is a reuseport group of its own, steered
 * on its own: a program and its two maps per port (at most MAX_PORTS), each
 * naming the serving workers that listen on that port.
 *
 * @module
 */
import { MAX_STEERED, SteeringObjects } from "./bpf.ts";
import type { Linux } from "./linux.ts";
import { findListener } from "./listeners.ts";
import { assignBuckets } from "./buckets.ts";

/** A worker that should take new connections: its pid and the ports it serves. */
export interface SteeredWorker {
  pid: number;
  ports: readonly number[];
}

/** Ports steered at most (each holds a program and two maps). */
export const MAX_PORTS = 16;
/** Sticky steering's table size: a multiple of 1 to 8 workers, well within MAX_STEERED slots. */
const BUCKETS = 840;

/** A steered worker's listener: its key in the map, and its address (its reuseport group). */
interface Member {
  key: number;
  address: string;
}

export class Steering {
  readonly #linux: Linux;
  /** Objects made at start (to check the privileges), for the first port steered. */
  #unused?: SteeringObjects;
  readonly #ports = new Map<number, PortSteering>();
  /** The kind of the last problem, to say each kind once. */
  #lastProblem?: string;
  /** --sticky: spread by the client's address, over a bucket table. */
  readonly #sticky: boolean;

  constructor(linux: Linux, objects: SteeringObjects, sticky = false) {
    this.#linux = linux;
    this.#unused = objects;
    this.#sticky = sticky;
  }

  /**
   * Makes `workers` the ones that get new connections, on each port the ones
   * that listen there. Returns undefined, or why some port could not be
   * steered (the kernel's own spread there).
   */
  steer(workers: readonly SteeredWorker[]): string | undefined {
    const problems: string[] = [];
    const ports = new Set([...this.#ports.keys(), ...workers.flatMap((worker) => worker.ports)]);
    for (const port of ports) {
      let group = this.#ports.get(port);
      if (!group) {
        if (this.#ports.size >= MAX_PORTS) {
          problems.push(`more than ${MAX_PORTS} ports`);
          continue;
        }
        try {
          const objects = this.#unused ?? SteeringObjects.create(this.#linux, this.#sticky);
          group = new PortSteering(this.#linux, objects, port, this.#sticky);
        } catch (error) {
          problems.push(`port ${port}: ${(error as Error).message}`);
          continue;
        }
        this.#unused = undefined;
        this.#ports.set(port, group);
      }
      const problem = group.steer(workers.filter((worker) => worker.ports.includes(port)));
      if (problem) problems.push(problem);
    }
    return problems.length > 0 ? problems.join("; ") : undefined;
  }

  /** Says a kind of problem once (whichever worker it is about), until steering works again. */
  newProblem(problem: string | undefined): string | undefined {
    const kind = problem?.replace(/pid \d+/g, "pid");
    const fresh = kind !== undefined && kind !== this.#lastProblem;
    this.#lastProblem = kind;
    return fresh ? problem : undefined;
  }

  close(): void {
    this.#unused?.close();
    for (const group of this.#ports.values()) group.close();
  }
}

/** One port's reuseport group: its program, maps and members. */
class PortSteering {
  readonly #linux: Linux;
  readonly #objects: SteeringObjects;
  readonly #port: number;
  /** Workers whose socket is in the listeners map, by pid. */
  readonly #members = new Map<number, Member>();
  /** Sticky: the bucket table (pids), else undefined. */
  #buckets?: number[];

  constructor(linux: Linux, objects: SteeringObjects, port: number, sticky: boolean) {
    this.#linux = linux;
    this.#objects = objects;
    this.#port = port;
    if (sticky) this.#buckets = [];
  }

  /**
   * Makes `workers` the ones that get this port's new connections. Returns
   * undefined, or why they could not all be steered (then none are).
   */
  steer(workers: readonly SteeredWorker[]): string | undefined {
    let problem: string | undefined;
    try {
      if (workers.length > MAX_STEERED) throw new Error(`more than ${MAX_STEERED} workers`);
      const keys = this.#join(workers);
      const slots = this.#buckets ? this.#stickySlots(workers, keys) : keys;
      slots.forEach((key, i) => this.#objects.setSlot(i + 1, key));
      this.#objects.setSlot(0, slots.length);
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

  /**
   * Sticky: BUCKETS slots, each a worker's key, as buckets.ts assigns them
   * (a client address keeps its worker while that worker serves).
   */
  #stickySlots(workers: readonly SteeredWorker[], keys: number[]): number[] {
    const keyOf = new Map(workers.map((worker, i) => [worker.pid, keys[i]]));
    this.#buckets = assignBuckets(this.#buckets!, workers.map((worker) => worker.pid), BUCKETS);
    return this.#buckets.map((pid) => keyOf.get(pid)!);
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
    const pidfd = this.#linux.pidfdOpen(worker.pid);
    try {
      const found = findListener(this.#linux, worker.pid, pidfd, this.#port, group);
      if (!found) throw new Error(`no listener on port ${this.#port} in worker pid ${worker.pid}`);
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

  close(): void {
    this.#objects.close();
  }
}
