/**
 * Handover: what happens to new connections while a worker drains.
 *
 * - `ebpf` ("steered"): a BPF program picks each new connection's listener
 *   from the workers the supervisor names (steering.ts), so a worker is taken
 *   out before it drains and gets no new connection; connections still
 *   queued when it closes go to a steered worker, whatever
 *   `net.ipv4.tcp_migrate_req` says. Needs CAP_BPF and CAP_NET_ADMIN (root
 *   has them) and pidfd_getfd on the workers.
 * - `kernel`: no program; a draining worker's listener is stopped at once
 *   (release.ts, in every mode: its connections stay), and
 *   `tcp_migrate_req=1` moves the connections queued on it to the others.
 * - `none`: `tcp_migrate_req=0`: those queued connections are reset.
 *
 * `--handover auto` takes the first that works; a forced mode that cannot
 * work is a start-up error.
 *
 * @module
 */
import { HotreloadError, UsageError } from "../errors.ts";
import { log } from "../log/mod.ts";
import { SteeringObjects } from "./bpf.ts";
import { Linux } from "./linux.ts";
import { Listeners } from "./release.ts";
import { type SteeredWorker, Steering } from "./steering.ts";

/** What `--handover` asks for. */
type HandoverSetting = "auto" | HandoverMode;
/** What is in effect. */
export type HandoverMode = "ebpf" | "kernel" | "none";

/** The active handover: says what it is, and steers when it can. */
export interface Handover {
  readonly mode: HandoverMode;
  /** One line for the start log: what happens to connections during a reload. */
  readonly summary: string;
  /** Makes `workers` the only ones that get new connections (does nothing unless steered). */
  steer(workers: readonly SteeredWorker[]): void;
  /** A worker listens on `port`: its listener is noted, to be released when it drains. */
  listening(pid: number, port: number): void;
  /**
   * Stops a draining worker's listeners on `ports` (release.ts), in every
   * mode. Returns undefined, or why it could not (the worker then keeps its
   * listener until it shuts its server down).
   */
  release(pid: number, ports: readonly number[]): string | undefined;
  /** The worker exited. */
  gone(pid: number): void;
  close(): void;
}

const SUMMARIES: Record<HandoverMode, string> = {
  ebpf: "steered (eBPF): a draining worker gets no new connection; queued ones move on",
  kernel: "kernel migration (tcp_migrate_req=1): a draining worker's queued connections move on",
  none: "none: a few new connections per reload may be reset",
};

/** Releasing listeners, or why it cannot work here; shared by every mode. */
type Release = Pick<Handover, "listening" | "release" | "gone">;

/** Releases listeners through `linux`, or says `problem` every time it is asked to. */
function releasing(linux: Linux | string): Release {
  if (typeof linux === "string") {
    return { listening() {}, release: () => linux, gone() {} };
  }
  const listeners = new Listeners(linux);
  return {
    listening(pid, port) {
      try {
        listeners.remember(pid, port);
      } catch { /* release will search, and say why it cannot */ }
    },
    release(pid, ports) {
      try {
        return listeners.release(pid, ports) > 0 ? undefined : `no listener on ${ports.join(", ")}`;
      } catch (error) {
        return (error as Error).message;
      }
    },
    gone: (pid) => listeners.gone(pid),
  };
}

/** A handover that steers nothing (kernel, none). */
function passiveHandover(mode: Exclude<HandoverMode, "ebpf">): Handover {
  const linux = Linux.open();
  return {
    mode,
    summary: SUMMARIES[mode],
    steer() {},
    ...releasing(linux),
    close() {
      if (typeof linux !== "string") linux.unload();
    },
  };
}

/**
 * The handover `setting` asks for, given `net.ipv4.tcp_migrate_req`
 * (undefined: unreadable). Throws a one-line error when a forced mode cannot work.
 */
export function openHandover(
  setting: HandoverSetting,
  migrateReq: number | undefined,
  sticky = false,
): Handover {
  if (sticky && (setting === "kernel" || setting === "none")) {
    throw new UsageError(
      `--sticky needs steering, and --handover ${setting} never steers: ` +
        "drop --handover, or use --handover ebpf",
    );
  }
  if (setting === "auto" || setting === "ebpf") {
    const steering = openSteering(sticky);
    if (typeof steering !== "string") return steeredHandover(steering, sticky);
    if (sticky) {
      throw new HotreloadError(
        `--sticky needs steering, which cannot work here: ${steering}; run as root or with the ` +
          "capabilities CAP_BPF and CAP_NET_ADMIN (docs/handover.md), or drop --sticky",
      );
    }
    if (setting === "ebpf") {
      throw new HotreloadError(
        `--handover ebpf cannot work here: ${steering}; run as root or with the capabilities ` +
          `CAP_BPF and CAP_NET_ADMIN (docs/handover.md), or use --handover auto`,
      );
    }
  }
  if (setting === "kernel" && migrateReq !== 1) {
    throw new HotreloadError(
      `--handover kernel needs net.ipv4.tcp_migrate_req=1 (it is ${migrateReq ?? "unreadable"}): ` +
        "run `sysctl -w net.ipv4.tcp_migrate_req=1`, or use --handover auto",
    );
  }
  return passiveHandover(migrateReq === 1 ? "kernel" : "none");
}

/** Steering and its libc, or why it cannot work here (no libc, no permission, an old kernel). */
function openSteering(sticky: boolean): { steering: Steering; linux: Linux } | string {
  const linux = Linux.open();
  if (typeof linux === "string") return linux;
  let objects: SteeringObjects | undefined;
  try {
    objects = SteeringObjects.create(linux, sticky);
    // pidfd_getfd is refused by some seccomp profiles (Docker's, without
    // CAP_SYS_PTRACE): try it on ourselves, so it fails now and not at the first reload.
    const pidfd = linux.pidfdOpen(Deno.pid);
    try {
      linux.close(linux.pidfdGetfd(pidfd, objects.slotsFd));
    } finally {
      linux.close(pidfd);
    }
    return { steering: new Steering(linux, objects, sticky), linux };
  } catch (error) {
    objects?.close();
    linux.unload();
    return (error as Error).message;
  }
}

function steeredHandover(
  { steering, linux }: { steering: Steering; linux: Linux },
  sticky: boolean,
): Handover {
  return {
    ...releasing(linux),
    mode: "ebpf",
    summary: sticky ? `${SUMMARIES.ebpf}; sticky: one client address, one worker` : SUMMARIES.ebpf,
    steer(workers) {
      let problem: string | undefined;
      try {
        problem = steering.steer(workers);
      } catch (error) {
        problem = (error as Error).message;
      }
      const fresh = steering.newProblem(problem);
      if (fresh) {
        log.warn(
          "handover.unsteered",
          `not steering new connections (${fresh}): the kernel spreads them over every listener meanwhile`,
          { role: "supervisor" },
        );
      }
    },
    close: () => steering.close(),
  };
}
