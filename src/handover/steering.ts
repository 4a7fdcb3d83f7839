/**
 * Steering: the supervisor decides which workers' listeners get new
 * connections. A worker that joins gets a key in the program's listeners map
 * (bpf.ts) and keeps it while it serves: its socket, a duplicate taken with
 * pidfd_getfd and closed at once (the map holds the socket itself; a
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
import { listenRows, socketFds } from "./listeners.ts";

/** A worker that should take new connections: its pid and the port it serves (if known). */
export interface SteeredWorker {
  pid: number;
  port?: number;
}

/** Where a worker's listener is, once found: its fd number in the worker and the socket's inode. */
interface Found {
  fd: number;
  inode: number;
  address: string;
}

/** A steered worker's listener: where it is in the worker, and its key in the map. */
interface Member extends Found {
  key: number;
}

export class Steering {
  readonly #linux: Linux;
  readonly #objects: SteeringObjects;
  /** Workers whose socket is in the listeners map, by pid. */
  readonly #members = new Map<number, Member>();
  /** Why the last steer could not steer, to say it once per distinct reason. */
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
      let member = this.#members.get(worker.pid);
      if (!member) {
        const found = this.#locate(worker, group);
        if (!found) {
          const port = worker.port === undefined
            ? "its port (none reported)"
            : `port ${worker.port}`;
          throw new Error(`no listener on ${port} in worker pid ${worker.pid}`);
        }
        member = { ...found, key: this.#freeKey() };
        this.#place(member, worker.pid);
        this.#members.set(worker.pid, member);
      }
      group ??= member.address;
      if (member.address !== group) {
        throw new Error(`worker pid ${worker.pid} listens on another address than the others`);
      }
      keys.push(member.key);
    }
    return keys;
  }

  #freeKey(): number {
    const used = new Set([...this.#members.values()].map((member) => member.key));
    let key = 0;
    while (used.has(key)) key++;
    return key;
  }

  /** Puts the worker's listener at its key, attaching the program to its group on the way. */
  #place(member: Member, pid: number): void {
    const pidfd = this.#linux.pidfdOpen(pid);
    try {
      const socket = this.#linux.pidfdGetfd(pidfd, member.fd);
      try {
        if (this.#linux.inode(socket) !== member.inode) {
          throw new Error(`worker pid ${pid} closed its listener`);
        }
        // Each time: the group is a new one when all its listeners had closed (a restart of all).
        this.#linux.attachReuseportProgram(socket, this.#objects.progFd);
        this.#objects.setListener(member.key, socket);
      } finally {
        this.#linux.close(socket);
      }
    } finally {
      this.#linux.close(pidfd);
    }
  }

  /** The worker's listener on its port; of the `group` address when it has several (IPv4 and IPv6). */
  #locate(worker: SteeredWorker, group?: string): Found | undefined {
    if (worker.port === undefined) return undefined;
    const rows = listenRows(worker.port);
    const byInode = new Map(rows.map((row) => [row.inode, row.address]));
    const fds = socketFds(worker.pid, new Set(byInode.keys()));
    // IPv4 rows come first: without a group yet, the IPv4 listener leads.
    const order = (inode: number) => rows.findIndex((row) => row.inode === inode);
    fds.sort((a, b) => order(a.inode) - order(b.inode));
    const first = fds.find((fd) => group === undefined || byInode.get(fd.inode) === group) ??
      fds[0];
    return first && { ...first, address: byInode.get(first.inode)! };
  }

  /** Says a problem once, until steering works again. */
  newProblem(problem: string | undefined): string | undefined {
    const fresh = problem !== undefined && problem !== this.#lastProblem;
    this.#lastProblem = problem;
    return fresh ? problem : undefined;
  }

  close(): void {
    this.#objects.close();
  }
}
