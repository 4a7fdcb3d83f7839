/**
 * The child protocol, shared by the supervisor and the code that runs inside
 * children. This module must stay free of imports: it is loaded by worker
 * preloads that resolve modules with the user's own deno.json.
 *
 * Start: the supervisor writes a {@link Handshake} on the child's stdin
 * before anything else: a secret nonce and the child's settings. The
 * preload reads it synchronously (a pending async stdin read would keep the
 * entry from running). Nothing of it appears in argv, where `ps` shows it to
 * every local user.
 *
 * Child → supervisor: one line on stderr that holds {@link FRAME_MARKER}, the
 * child's nonce, ":" and a JSON object. Apps may print anything, including
 * text an HTTP client sent them; without the nonce, which only the preload
 * knows, such text is relayed as output and never taken as a frame.
 *
 * Supervisor → child: after the handshake, JSON lines on stdin. EOF means the
 * supervisor is gone.
 */

/** Prefix of every control line a child writes; the nonce and the JSON follow. */
export const FRAME_MARKER = "\u0000hotreload:";

/** What a child reports to its supervisor. */
export type ChildMessage =
  | { t: "ready"; via: "listen" | "app"; port?: number; hostname?: string }
  /** A pool listener is bound: every one (the first included), once per port. */
  /**
   * A pool listener is bound: every one (the first included), once per port,
   * and again when that port's `releasable` changes: true while only
   * Deno.serve servers listen there, whose listeners the supervisor stops
   * from outside when the worker leaves service (src/handover/release.ts).
   */
  | { t: "listening"; port: number; hostname?: string; releasable?: boolean }
  | { t: "bind-error"; port?: number; hostname?: string; message: string }
  | { t: "restart-requested" }
  /** The count of requests served; `asked`: the answer to {@link COUNT_SIGNAL}. */
  | { t: "requests"; served: number; asked?: true }
  | { t: "recycle"; reason: string }
  /** The event loop runs (sent every third of --timeout). */
  | { t: "alive" }
  /**
   * Draining: `open` requests still being answered, `relaying` of them sent
   * on to a serving worker (new code's, which the old worker's grace does
   * not cut); `accepting` false once the listeners stopped.
   */
  | { t: "draining"; open: number; relaying: number; accepting: boolean };

/**
 * A worker's close window when the instance stops for good (SIGINT): nobody
 * takes its clients over, so it need not wait long for them.
 */
export const LAST_CLOSE_WINDOW_MS = 250;

/**
 * Asks a worker for its count of requests now (`hotreload status` counts
 * every request answered before it was asked; the 50 ms reports may be
 * late). SIGPWR on Linux (by default it ends a process, so only a worker
 * whose preload listens is sent it), SIGINFO elsewhere (ignored by default).
 * Never SIGUSR1: it opens Deno's inspector.
 */
export const COUNT_SIGNAL: Deno.Signal = Deno.build.os === "linux" ? "SIGPWR" : "SIGINFO";

/** What the supervisor tells a child. */
export type SupervisorMessage = { t: "message"; data: unknown };

/** The first thing a child reads on its stdin. */
export interface Handshake<S> {
  /** Proves that a frame comes from the preload, not from app output. */
  nonce: string;
  /**
   * The supervisor's pid: the child is an orphan whenever its parent is
   * another process, even if the supervisor died before the child ran.
   */
  supervisor: number;
  /**
   * When the supervisor sent it, in ms since the epoch: its deadlines for
   * the child (--ready-timeout) count from then, and so do the child's own.
   */
  sentAt: number;
  settings: S;
}

/** The handshake as bytes: a decimal length line, then that many bytes of JSON. */
export function encodeHandshake<S>(handshake: Handshake<S>): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(handshake));
  const head = new TextEncoder().encode(`${json.length}\n`);
  const bytes = new Uint8Array(head.length + json.length);
  bytes.set(head);
  bytes.set(json, head.length);
  return bytes;
}

/** Encodes one child message as a framed line (with its newline). */
export function encodeFrame(nonce: string, message: ChildMessage): string {
  return `${FRAME_MARKER}${nonce}:${JSON.stringify(message)}\n`;
}

/**
 * Splits a stderr line into the app's own text and the frame it carries, if
 * it carries one with this child's nonce. Text printed without a newline just
 * before a frame ends up in `text`. Anything malformed is plain text.
 */
export function decodeFrame(line: string, nonce: string): { text: string; message?: ChildMessage } {
  const prefix = `${FRAME_MARKER}${nonce}:`;
  const at = line.indexOf(prefix);
  if (at === -1) return { text: line };
  let raw: unknown;
  try {
    raw = JSON.parse(line.slice(at + prefix.length));
  } catch {
    return { text: line };
  }
  const message = checkChildMessage(raw);
  return message ? { text: line.slice(0, at), message } : { text: line };
}

const isText = (value: unknown, max: number) => typeof value === "string" && value.length <= max;
const isPort = (value: unknown) =>
  value === undefined || (Number.isInteger(value) && (value as number) >= 0 &&
    (value as number) <= 65535);
const isHost = (value: unknown) => value === undefined || isText(value, 255);

// deno-lint-ignore no-explicit-any
type Fields = Record<string, any>;

/** What each child message must hold (a kind without an entry does not compile). */
const SHAPES: Record<ChildMessage["t"], (m: Fields) => boolean> = {
  ready: (m) => (m.via === "listen" || m.via === "app") && isPort(m.port) && isHost(m.hostname),
  listening: (m) =>
    m.port !== undefined && isPort(m.port) && isHost(m.hostname) &&
    (m.releasable === undefined || typeof m.releasable === "boolean"),
  "bind-error": (m) => isText(m.message, 1000) && isPort(m.port) && isHost(m.hostname),
  "restart-requested": () => true,
  requests: (m) =>
    Number.isSafeInteger(m.served) && m.served >= 0 && (m.asked === undefined || m.asked === true),
  recycle: (m) => isText(m.reason, 200),
  alive: () => true,
  draining: (m) =>
    Number.isSafeInteger(m.open) && m.open >= 0 && Number.isSafeInteger(m.relaying) &&
    m.relaying >= 0 && m.relaying <= m.open && typeof m.accepting === "boolean",
};

/** Returns `raw` as a ChildMessage when it is exactly one of the expected shapes. */
export function checkChildMessage(raw: unknown): ChildMessage | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const m = raw as Fields;
  return typeof m.t === "string" && Object.hasOwn(SHAPES, m.t) &&
      SHAPES[m.t as ChildMessage["t"]](m)
    ? m as ChildMessage
    : undefined;
}

/** The settings a worker's preload reads from its handshake. */
export interface WorkerSettings {
  /** 0-based worker id. */
  id: number;
  /** Generation this worker belongs to (1 for the first start, +1 per reload). */
  generation: number;
  /** Number of workers the supervisor wants. */
  workers: number;
  /** Port to use when the app's Deno.serve/Deno.listen/node listen gives none. */
  port?: number;
  /** Address to bind when the app names none (`--host`). */
  host?: string;
  /**
   * The ports the serving workers listen on (else just `port`): a new worker
   * is ready once it listens on every one again, or has listened for a while.
   */
  ports?: number[];
  /** Drain deadline used when the worker drains on its own (supervisor gone). */
  orphanGraceMs: number;
  /** How long an orphaned worker keeps serving, waiting for a successor, before it drains. */
  orphanServeMs: number;
  /**
   * How long a draining worker keeps its idle keep-alive connections after
   * the last request reached it (each next request is sent on and answered
   * with `Connection: close`) before it closes them.
   */
  closeWindowMs: number;
  /** --grace: counted after the close window; a worker that keeps getting requests stops waiting for quiet half-way. */
  graceMs: number;
  /**
   * The instance's secret: the marker of a hop (hop.ts), which only this
   * instance's workers can make, and so only their client addresses are believed.
   */
  hopKey: string;
  /** Requests after which the worker asks to be replaced (0: never). */
  maxRequests: number;
  /** How often to say "alive" (0: never; a third of --timeout). */
  heartbeatMs?: number;
  /** --ready-path: ready only once a GET of it, answered by this worker, is 2xx. */
  readyPath?: string;
  /** --ready-timeout: how long the ready path may take to answer 2xx. */
  readyTimeoutMs?: number;
  /**
   * hotreload gave the worker GLIBC_TUNABLES ({@link WORKER_MALLOC_TUNABLES}),
   * for glibc alone: the preload removes it before the app runs.
   */
  dropMallocTunables?: boolean;
}

/**
 * A worker's GLIBC_TUNABLES when the user sets none (in the environment or
 * an --env-file). glibc's malloc gives the top of its heap back to the
 * kernel once 128 KiB of it is free, and raises that threshold (to twice the
 * largest mmap'd block freed, up to 64 MiB) only when such a block happens
 * to be freed. So whether a Deno process serving new connections gives
 * back and faults in the same pages over and over is decided by the
 * allocations it happened to make: 4 plain `deno run` processes sharing a
 * port took 0.2-0.5 minor faults per request in 3 of 10 starts, and served
 * 0.77-0.81 of the same processes with these tunables beside them, which
 * took at most 0.02 (bench/process_model.ts, docs/benchmarks.md). Setting
 * either threshold stops glibc's adjustment, so both are set, to the state
 * it reaches after freeing a 4 MiB block: up to 8 MiB of free heap kept,
 * blocks up to 4 MiB from the heap.
 */
export const WORKER_MALLOC_TUNABLES =
  "glibc.malloc.trim_threshold=8388608:glibc.malloc.mmap_threshold=4194304";

/** The settings a custom process's preload reads from its handshake. */
export interface ProcessSettings {
  name: string;
  index: number;
  generation: number;
  args: Record<string, unknown>;
  orphanGraceMs: number;
  /** How often to say "alive" (0: never; a third of --timeout). */
  heartbeatMs?: number;
}

/** Marks the default export of a custom-process entry written with `defineProcess`. */
export const PROCESS_BRAND = Symbol.for("hotreload.process");

/** The global slot through which mod.ts (in the app) reaches the preload. */
export const BRIDGE_KEY = Symbol.for("hotreload.bridge");

/** What the preload offers to mod.ts through {@link BRIDGE_KEY}. */
export interface Bridge {
  role: "worker" | "process";
  /** Worker identity; undefined in a custom process. */
  info?: { id: number; generation: number; workers: number; port?: number };
  /** Custom-process identity; undefined in a worker. */
  process?: { name: string; index: number; generation: number; args: Record<string, unknown> };
  ready(): void;
  deferReady(): void;
  onShutdown(hook: () => unknown): void;
  isDraining(): boolean;
  /** Aborted when draining begins (before the servers close). */
  drainSignal(): AbortSignal;
}
