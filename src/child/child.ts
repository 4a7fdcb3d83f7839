/**
 * One managed child process: spawned in its own process group, its output
 * relayed line by line, its control frames decoded, its state tracked. It
 * reaches the OS only through `Os` (os.ts): spawn, signal; unit tests run it
 * on a fake one.
 *
 * State: starting → ready → draining → exited. The supervisor decides every
 * transition except "exited", which the OS decides.
 */
import {
  type ChildMessage,
  COUNT_SIGNAL,
  decodeFrame,
  encodeHandshake,
  type SupervisorMessage,
} from "../runtime/protocol.ts";
import { relayLine, type StreamName } from "../log/relay.ts";
import { forEachLine } from "../runtime/lines.ts";
import { LineTail } from "./tail.ts";
import { type Os, type OsProcess, REAL_OS } from "./os.ts";

/** Lifecycle state of a child. */
export type ChildState = "starting" | "ready" | "draining" | "exited";

/** Everything needed to start a child. */
export interface ChildSpec {
  role: "worker" | "process";
  /** Slot id of a worker, or `name#index` of a custom process. */
  id: number | string;
  generation: number;
  /** Prefix of relayed lines and log messages, e.g. `worker 2`. */
  label: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /**
   * What the child's preload reads from its handshake; undefined for a spare,
   * which waits, loaded but before any app code, until {@link ManagedChild.release}.
   */
  settings: unknown;
  /** Lines for which this returns true are dropped from the relayed output. */
  dropLine?: (line: string) => boolean;
}

/** What a child reports back to whoever manages it. */
export interface ChildListener {
  message(child: Child, message: ChildMessage): void;
  exit(child: Child, status: Deno.CommandStatus): void;
}

const encoder = new TextEncoder();
/** The first byte of every frame (FRAME_MARKER starts with NUL): it always starts a line. */
const FRAME_START = 0;

/**
 * How long a child's output pipes may stay open after the child exited: a
 * grandchild that left the child's process group (a detached command) may
 * hold them forever, and must not hide the exit.
 */
const PIPE_DRAIN_MS = 500;

/**
 * Most lines held back while a child starts. A child that crashes before it
 * is ready has its output shown once, as one error block (or not at all when
 * it is the same error as last time); a child that becomes ready has it
 * relayed then. Past this many lines, output flows as it comes.
 */
const HELD_LINES = 500;

/** 128 random bits, as hex: the secret that makes a child's frames unforgeable. */
function newNonce(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  )
    .join("");
}

/**
 * What the supervisor knows of and does to a child: the public side of
 * {@link ManagedChild}; the supervisor's unit tests drive the same logic with a fake.
 */
export type Child = Pick<ManagedChild, keyof ManagedChild>;

/** Starts a child for a spec; throws when it cannot be started at all. */
export type Spawn = (spec: ChildSpec, listener: ChildListener) => Child;

/** The real child: a process in its own group, its output relayed, its frames decoded. */
export class ManagedChild {
  spec: ChildSpec;
  readonly pid: number;
  /** Clock time of the start (of the release, for a spare). */
  startedAt: number;
  /** True for a spare not yet released. */
  spare: boolean;
  state: ChildState = "starting";
  drainStartedAt?: number;
  /** When the child became ready, if it did. */
  readyAt?: number;
  /** When the supervisor killed the child (its group), if it did. */
  killedAt?: number;
  /** Requests served, as last reported by a worker (for status). */
  requestsServed = 0;
  /** Clock time of its last frame: a ready child that goes quiet for --timeout is hung. */
  lastSeenAt: number;
  /** While draining: requests still being answered, as last reported. */
  openRequests?: number;
  /** Of those, the ones it sent on to a serving worker and is relaying the answer of. */
  relaying = 0;
  /** Told to drain because the instance stops for good (a shorter close window: see drain). */
  drainedLast = false;
  /**
   * Out of service for good: its Deno.serve listeners were stopped from
   * outside (handover/release.ts), and any it reports from now on (an entry
   * that calls Deno.serve only after it was told to leave) is stopped then.
   */
  released = false;
  /** The main port of a ready worker (its ready path's, as it reported, or --port). */
  port?: number;
  /** Every port a worker's pool listeners are bound to, as it reported them. */
  readonly ports = new Set<number>();
  /** Of those, the ones only Deno.serve servers listen on: stopped from outside when it leaves. */
  readonly releasable = new Set<number>();
  /** False once a draining worker has closed its listeners. */
  accepting = true;
  /** The last lines the child printed, for crash reports. */
  readonly tail = new LineTail(15);
  /** Output held back while starting (see HELD_LINES); undefined once it flows. */
  #held?: Array<[StreamName, string]> = [];
  /** A ready worker printed an uncaught error: its stack is held until its exit is judged. */
  #holdingCrash = false;
  /** True once its exit status was read: its pid is no longer its own. */
  #reaped = false;
  readonly #process: OsProcess;
  readonly #os: Os;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #nonce = newNonce();

  readonly #now: () => number;

  private constructor(spec: ChildSpec, process: OsProcess, now: () => number, os: Os) {
    this.spec = spec;
    this.#now = now;
    this.#os = os;
    this.startedAt = now();
    this.lastSeenAt = this.startedAt;
    this.#process = process;
    this.pid = process.pid;
    this.#stdin = process.stdin.getWriter();
    // A write to a child that has died must not crash the supervisor.
    this.#stdin.closed.catch(() => {});
    this.spare = spec.settings === undefined;
    if (!this.spare) this.#handshake();
  }

  #handshake(): void {
    const handshake = {
      nonce: this.#nonce,
      supervisor: Deno.pid,
      sentAt: Date.now(),
      settings: this.spec.settings,
    };
    this.#stdin.write(encodeHandshake(handshake)).catch(() => {});
  }

  /** Makes a spare the child `spec` describes: sends its handshake; it starts now. */
  release(spec: ChildSpec): void {
    if (!this.spare) return;
    this.spare = false;
    this.spec = spec;
    this.startedAt = this.#now();
    this.lastSeenAt = this.startedAt;
    this.#handshake();
  }

  /**
   * Starts the child, in a process group of its own; throws when the command
   * cannot be started at all. `os` is the real one but in unit tests.
   */
  static spawn(
    spec: ChildSpec,
    listener: ChildListener,
    now: () => number = () => performance.now(),
    os: Os = REAL_OS,
  ): ManagedChild {
    const { command, args, env, cwd } = spec;
    const process = os.spawn(command, { args, env, cwd });
    const child = new ManagedChild(spec, process, now, os);
    child.#watch(listener);
    return child;
  }

  async #watch(listener: ChildListener): Promise<void> {
    const relay = (stream: StreamName) => (line: string) => {
      // Frames come on stderr only, and only with this child's nonce.
      let { text, message } = stream === "stderr"
        ? decodeFrame(line, this.#nonce)
        : { text: line, message: undefined };
      if (message) {
        this.lastSeenAt = this.#now();
        // A frame after "error: Uncaught": it lives on (an app's own line): show what was held.
        if (this.#holdingCrash) {
          this.#holdingCrash = false;
          this.releaseOutput(true);
        }
        listener.message(this, message);
      }
      if (message && text === "") return;
      // A frame that did not decode must not show its nonce (it proves the next ones).
      if (!message && text.includes(this.#nonce)) text = text.replaceAll(this.#nonce, "<nonce>");
      if (this.spec.dropLine?.(text)) return;
      this.tail.push(text);
      // Held while starting, and while draining a start that never got ready (told to stop
      // mid-start: what it prints then, such as the start-up error again, is not news).
      const starting = this.state === "starting" ||
        (this.state === "draining" && this.readyAt === undefined);
      // A serving worker's uncaught error: held until its exit, so that its pool shows a
      // stack once for all the workers it hits (worker_pool.ts), not once per worker.
      if (
        stream === "stderr" && this.spec.role === "worker" && this.readyAt !== undefined &&
        !this.#holdingCrash && text.startsWith("error: Uncaught")
      ) {
        this.#holdingCrash = true;
        this.#held = [];
      }
      if (this.#held && (starting || this.#holdingCrash) && this.#held.length < HELD_LINES) {
        this.#held.push([stream, text]);
        return;
      }
      this.releaseOutput(true);
      relayLine(stream, { ...this.spec, pid: this.pid }, text);
    };
    const stopReading = new AbortController();
    const reading = Promise.all([
      forEachLine(this.#process.stdout, relay("stdout"), { signal: stopReading.signal }),
      forEachLine(this.#process.stderr, relay("stderr"), {
        signal: stopReading.signal,
        lineStart: FRAME_START,
      }),
    ]);
    // The exit is known from the process itself, never from its pipes closing.
    const status = await this.#process.status;
    this.#reaped = true;
    // Grandchildren the child left behind share its group: take them down
    // too, at once, since they may hold our pipes open.
    this.#os.signal(this.pid, "SIGKILL", true);
    this.#stdin.abort().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      reading,
      new Promise((resolve) => timer = setTimeout(resolve, PIPE_DRAIN_MS)),
    ]);
    clearTimeout(timer);
    stopReading.abort();
    await reading;
    this.state = "exited";
    listener.exit(this, status);
  }

  /** Milliseconds since the child was started. */
  uptimeMs(now = this.#now()): number {
    return now - this.startedAt;
  }

  /**
   * Ends the holding back of start-up output: relays what was held when
   * `show`, drops it otherwise (an error already shown for an earlier start).
   */
  releaseOutput(show: boolean): void {
    const held = this.#held;
    this.#held = undefined;
    if (!show || !held) return;
    for (const [stream, text] of held) relayLine(stream, { ...this.spec, pid: this.pid }, text);
  }

  /** Marks the child ready and returns how long it took. */
  markReady(): number {
    this.releaseOutput(true);
    this.state = "ready";
    this.readyAt = this.#now();
    return this.readyAt - this.startedAt;
  }

  /**
   * Asks the child to finish its work and exit: a worker SIGTERM when others
   * take over its clients (a reload, a recycle, a takeover: it keeps idle
   * connections for the close window), SIGINT when the instance stops for
   * good (`last`: nobody takes its clients over, so it does not wait for
   * them); a custom process SIGINT (to which SIGTERM from anyone else means
   * "warm restart").
   */
  drain(last = false): void {
    if (this.state === "exited") return;
    if (this.state === "draining") {
      // Draining for a reload when the instance stops: it need not wait for its clients now.
      if (last && this.spec.role === "worker" && !this.drainedLast) {
        this.#os.signal(this.pid, "SIGINT", false);
      }
      this.drainedLast ||= last;
      return;
    }
    this.drainedLast = last;
    this.state = "draining";
    this.drainStartedAt = this.#now();
    this.#os.signal(this.pid, this.spec.role === "worker" && !last ? "SIGTERM" : "SIGINT", false);
  }

  /**
   * A ready worker out of service but still listening (`held`: a
   * predecessor held through a settle window, steered) sends every request
   * on to the serving workers (SIGUSR2); `false` puts it back in service
   * (SIGWINCH). Never SIGUSR1: it opens Deno's inspector.
   */
  hold(held: boolean): void {
    if (this.state !== "ready" || this.spec.role !== "worker") return;
    this.#os.signal(this.pid, held ? "SIGUSR2" : "SIGWINCH", false);
  }

  /**
   * A held worker learns that the whole new generation serves (SIGURG): one
   * that cannot send requests on (an app whose handler reads no request,
   * src/runtime/serve_handler.ts) then asks its clients to reconnect, and
   * they spread over every new worker instead of crowding the first.
   */
  handOff(): void {
    if (this.state !== "ready" || this.spec.role !== "worker") return;
    this.#os.signal(this.pid, "SIGURG", false);
  }

  /**
   * Asks a worker that is past its start (its preload listens) for its
   * count of requests now (COUNT_SIGNAL); it answers with a `requests` frame
   * marked `asked`. False when there is nobody to ask.
   */
  askCount(): boolean {
    const past = this.state === "ready" || this.state === "draining";
    if (this.spec.role !== "worker" || this.spare || !past) return false;
    this.#os.signal(this.pid, COUNT_SIGNAL, false);
    return true;
  }

  /**
   * A serving worker lets one keep-alive connection go (SIGCONT): its next
   * answer says `Connection: close` (supervisor/rebalance.ts).
   */
  shed(): void {
    if (this.state !== "ready" || this.spec.role !== "worker") return;
    this.#os.signal(this.pid, "SIGCONT", false);
  }

  /** Ends the child and everything in its process group at once. */
  kill(): void {
    if (this.state === "exited") return;
    this.killedAt ??= this.#now();
    // Started through `setsid` a moment ago, it may not lead its own group yet (session.ts),
    // and then nothing it started can be in one: the child itself. Never once it was reaped:
    // its pid may be another process's by then.
    if (this.#os.signal(this.pid, "SIGKILL", true) || this.#reaped) return;
    this.#os.signal(this.pid, "SIGKILL", false);
  }

  /** Sends a message on the child's stdin. */
  send(message: SupervisorMessage): void {
    if (this.state === "exited") return;
    this.#stdin.write(encoder.encode(JSON.stringify(message) + "\n")).catch(() => {});
  }
}

/** Describes how a child ended: `exit code 1` or `signal SIGKILL`. */
export function describeExit(status: Deno.CommandStatus): string {
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}
