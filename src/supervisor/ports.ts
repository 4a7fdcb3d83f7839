/**
 * Port policing. Every port a worker listens on is the pool's: shared
 * (reusePort), shown in status, steered (one group per port), released when
 * a worker leaves. The first time a port is seen it must not be shared with
 * an app that is not ours, which reusePort would silently let the kernel
 * split traffic with (--port itself was checked at start, cli/port_check.ts).
 * A ready worker that never bound --port is named once (the app ignores it),
 * and a bind error before anything ever served is bad input, not a crash to
 * retry forever.
 *
 * Releasing: the Deno.serve listeners of workers leaving service are stopped
 * from outside (handover/release.ts), all before any of them is told to
 * drain, while their connections stay open. Steering: the handover hears
 * which workers serve, on which ports, when that changes (Steering).
 */
import type { Child } from "../child/child.ts";
import type { Handover } from "../handover/mod.ts";
import { log } from "../log/mod.ts";
import type { World } from "./world.ts";

/** The ports a worker serves: those it reported listening on, else its main port. */
export function portsOf(child: Child): number[] {
  if (child.ports.size > 0) return [...child.ports];
  return child.port === undefined ? [] : [child.port];
}

/**
 * What the handover is told of the serving workers: each change of who
 * serves on which ports, and nothing while held (a takeover before its
 * switch leaves the old instance's steering in place until its own workers
 * have settled).
 */
export class Steering {
  /** The serving workers and their ports, as last told. */
  #told = "";
  #held = false;

  constructor(private readonly handover: () => Handover | undefined) {}

  /** The workers that serve now (the pool calls it whenever that may have changed). */
  tell(serving: readonly Child[]): void {
    if (this.#held) return;
    // Ports count too: a serving worker that opens another port is steered there.
    const told = serving.map((child) => `${child.pid}:${[...child.ports].join("+")}`).join(",");
    if (told === this.#told) return;
    this.#told = told;
    this.handover()?.steer(serving.map((c) => ({ pid: c.pid, ports: portsOf(c) })));
  }

  /** From now on the handover is told nothing, until {@link release}. */
  hold(): void {
    this.#held = true;
  }

  /** The handover is told again (the pool's next `steer` tells it who serves). */
  release(): void {
    this.#held = false;
  }
}

/** What port policing reads of the rest of the supervisor. */
export interface PortsSeam {
  /** --port, when given. */
  port?: number;
  world: Pick<World, "foreignListener" | "formerWorkers">;
  /** The handover, once connected. */
  handover(): Handover | undefined;
  /** Every live worker (ours, for the foreign-listener check). */
  workers(): Child[];
  /** Tells the handover the serving workers (a serving worker that opens another port). */
  steer(): void;
}

export class Ports {
  /** The ports workers have bound (status shows them). */
  readonly #bound = new Set<number>();
  /** True once the "app ignores --port" warning was given. */
  #saidWrongPort = false;
  /** A listener could not be released (said once). */
  #releaseProblemSaid = false;

  constructor(private readonly seam: PortsSeam) {}

  /** Every port a worker has bound, in order. */
  bound(): number[] {
    return [...this.#bound].sort((a, b) => a - b);
  }

  /**
   * A worker listens on `port`. Returns why the run must end when that port
   * is already served by another app (said in the log), else undefined.
   */
  onListening(child: Child, port: number, releasable: boolean | undefined): string | undefined {
    if (releasable) child.releasable.add(port);
    else child.releasable.delete(port);
    this.seam.handover()?.listening(child.pid, port);
    child.ports.add(port);
    // Told to leave before it listened here: without steering the kernel would give it
    // connections until its close window ends, and then close those it had not read.
    if (child.released && releasable) this.#stop(child, [port]);
    // A serving worker that opens another port: steer that port too.
    if (child.state === "ready") this.seam.steer();
    if (this.#bound.has(port)) return undefined;
    this.#bound.add(port);
    if (port === this.seam.port) return undefined;
    const ours = new Set([
      Deno.pid,
      ...this.seam.workers().map((c) => c.pid),
      ...this.seam.world.formerWorkers?.() ?? [],
    ]);
    const other = this.seam.world.foreignListener(
      port,
      (pid, pgid) => ours.has(pid) || ours.has(pgid),
    );
    if (!other) return undefined;
    const who = other.command
      ? `pid ${other.pid}: ${other.command.slice(0, 120)}`
      : `pid ${other.pid}`;
    const why = `port ${port} is already served by another process (${who}); with reusePort the ` +
      `kernel would split the traffic between both apps: stop it, or give this app another port ` +
      `(--port)`;
    log.error("worker.foreign-listener", why, {
      role: "worker" as const,
      id: child.spec.id,
      pid: child.pid,
      port,
    });
    return why;
  }

  /** With --port, a ready worker that never bound it is named, once (the app ignores --port). */
  checkMainPort(child: Child): void {
    const wanted = this.seam.port;
    if (wanted === undefined || child.ports.size === 0 || child.ports.has(wanted)) return;
    if (this.#saidWrongPort) return;
    this.#saidWrongPort = true;
    const listened = [...child.ports].sort((a, b) => a - b).join(", ");
    log.warn(
      "worker.wrong-port",
      `worker ${child.spec.id} listens on port ${listened}, not on --port ${wanted}: the app ignores ` +
        `--port; read PORT in the app (Deno.env.get("PORT"), process.env.PORT), or drop --port`,
      { role: "worker", id: child.spec.id, pid: child.pid, port: [...child.ports][0] },
    );
  }

  /**
   * A worker could not listen. Before any worker was ever ready this ends the
   * run (returns true; said once, for the first worker that failed, unless
   * `stopping` already); after, the worker's exit is explained and retried.
   */
  onBindError(
    child: Child,
    port: number | undefined,
    message: string,
    pool: { everReady: boolean; explainExit(child: Child, why: string): void },
    stopping: boolean,
  ): boolean {
    const where = port === undefined ? "its port" : `port ${port}`;
    if (!pool.everReady) {
      if (stopping) return false;
      log.error(
        "worker.bind-error",
        `cannot listen: ${where} is already in use by another process; stop it or choose another --port`,
        { role: "worker", id: child.spec.id, pid: child.pid },
      );
      return true;
    }
    pool.explainExit(child, `could not listen on ${where} (address in use)`);
    log.warn("worker.bind-error", `worker ${child.spec.id} cannot listen on ${where}: ${message}`, {
      role: "worker",
      id: child.spec.id,
      pid: child.pid,
    });
    return false;
  }

  /**
   * Workers about to drain: their Deno.serve listeners are stopped from
   * outside (handover/release.ts), all before any is told to drain, while
   * their connections stay open. Where that cannot be done, each keeps its
   * listener until its close window ends, and new connections keep reaching
   * it meanwhile (it sends their requests on): said once.
   */
  release(leaving: readonly Child[], held = false): void {
    const handover = this.seam.handover();
    // Steered, a held worker can be put back: it keeps its listener (steering keeps it idle).
    if (held && handover?.mode === "ebpf") return;
    for (const child of leaving) {
      // Released when it was held, or when it began to drain.
      if (child.released || child.state === "draining") continue;
      // One still starting may listen later: its listeners are stopped as it reports them.
      child.released = true;
      if (child.releasable.size > 0) this.#stop(child, [...child.releasable]);
    }
  }

  /** Stops `child`'s listeners on `ports` from outside; a failure is said once. */
  #stop(child: Child, ports: number[]): void {
    const problem = this.seam.handover()?.release(child.pid, ports);
    if (problem === undefined || this.#releaseProblemSaid) return;
    this.#releaseProblemSaid = true;
    log.warn(
      "handover.unreleased",
      `cannot stop a draining worker's listener from outside (${problem}): each keeps its ` +
        `listener until its close window ends, sending on the requests that reach it`,
      { role: "supervisor", pid: child.pid },
    );
  }

  /**
   * Releases a worker that is not ours (a dead supervisor's orphan): it
   * said nothing to us of its ports, so ours that only Deno.serve listens on
   * (the same app's) are stopped; its own are searched for them.
   */
  releaseForeign(): (pid: number) => void {
    const ports = [...new Set(this.seam.workers().flatMap((child) => [...child.releasable]))];
    return (pid) => {
      if (ports.length > 0) this.seam.handover()?.release(pid, ports);
    };
  }
}
