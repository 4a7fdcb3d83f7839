/**
 * Releasing a draining worker's listeners: the supervisor stops them from
 * outside, so the worker takes no new connection while it keeps every
 * connection it has.
 *
 * A worker serves `Deno.serve` with Deno's own server, which accepts inside
 * Rust and can stop accepting only through `shutdown()`, and that also
 * closes every idle keep-alive connection at once, racing the next request
 * a client may be sending on it. So the worker asks (a `release` frame), and
 * the supervisor takes a duplicate of each of its listening sockets on the
 * ports named (pidfd_getfd) and shuts it down for reading: the socket leaves
 * its reuseport group at once, like a closed one (the connections queued on
 * it move on with steering or `tcp_migrate_req=1`, are reset otherwise),
 * Deno's accept fails with EINVAL (the worker expects it), and the
 * connections the worker accepted are not touched. pidfd_getfd needs the
 * right to ptrace the worker: a parent has it over its own children, as
 * root or not, unless Yama's ptrace_scope is 2 or more or a seccomp profile
 * forbids the call.
 *
 * The sockets are found when the worker first reports a port (it has few
 * descriptors then) and remembered by descriptor number; at release each is
 * checked again (still a listener on that port), else the worker's sockets
 * are searched anew.
 *
 * @module
 */
import { type Linux, OsError } from "./linux.ts";
import { socketsOf } from "./listeners.ts";

const EBADF = 9;

/** The workers' listening sockets, by pid: descriptor numbers in the worker, and their port. */
export class Listeners {
  readonly #linux: Linux;
  readonly #known = new Map<number, Map<number, number>>();

  constructor(linux: Linux) {
    this.#linux = linux;
  }

  /** Finds and remembers `pid`'s listening sockets on `port` (called when it reports the port). */
  remember(pid: number, port: number): void {
    const found = this.#search(pid, [port], () => {});
    const known = this.#known.get(pid) ?? new Map<number, number>();
    for (const [fd, listenerPort] of known) if (listenerPort === port) known.delete(fd);
    for (const fd of found) known.set(fd, port);
    this.#known.set(pid, known);
  }

  /**
   * Stops `pid`'s listeners on `ports` (shutdown SHUT_RD on a duplicate).
   * Returns how many were stopped; throws when the worker's sockets cannot
   * be reached (no pidfd_getfd here).
   */
  release(pid: number, ports: readonly number[]): number {
    let stopped = 0;
    const stop = (socket: number) => {
      this.#linux.stopListening(socket);
      stopped++;
    };
    const known = [...this.#known.get(pid) ?? []].filter(([, port]) => ports.includes(port));
    const pidfd = this.#linux.pidfdOpen(pid);
    try {
      let missing = known.length === 0;
      for (const [fd, port] of known) {
        if (!this.#checked(pidfd, fd, [port], stop)) missing = true;
      }
      // A listener opened again since (after an accept error), or never reported: search.
      if (missing) this.#searchWith(pid, pidfd, ports, stop);
    } finally {
      this.#linux.close(pidfd);
    }
    this.#known.delete(pid);
    return stopped;
  }

  /** The worker exited: forget it. */
  gone(pid: number): void {
    this.#known.delete(pid);
  }

  #search(pid: number, ports: readonly number[], act: (socket: number) => void): number[] {
    const pidfd = this.#linux.pidfdOpen(pid);
    try {
      return this.#searchWith(pid, pidfd, ports, act);
    } finally {
      this.#linux.close(pidfd);
    }
  }

  /** Every listener of the process on `ports`: acts on each, returns their descriptor numbers. */
  #searchWith(
    pid: number,
    pidfd: number,
    ports: readonly number[],
    act: (socket: number) => void,
  ): number[] {
    const found: number[] = [];
    for (const { fd } of socketsOf(pid)) {
      if (this.#checked(pidfd, fd, ports, act)) found.push(fd);
    }
    return found;
  }

  /** True when the process's `fd` is a listener on one of `ports`; `act` gets a duplicate of it. */
  #checked(
    pidfd: number,
    fd: number,
    ports: readonly number[],
    act: (socket: number) => void,
  ): boolean {
    let socket: number;
    try {
      socket = this.#linux.pidfdGetfd(pidfd, fd);
    } catch (error) {
      if (error instanceof OsError && error.errno === EBADF) return false; // closed meanwhile
      throw error;
    }
    try {
      const listener = this.#linux.listener(socket);
      if (!listener || !ports.includes(listener.port)) return false;
      act(socket);
      return true;
    } finally {
      this.#linux.close(socket);
    }
  }
}
