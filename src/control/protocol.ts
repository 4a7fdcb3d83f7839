/**
 * The control socket's protocol: the client sends one JSON request line; the
 * supervisor answers at once with {@link ACCEPTED} (so a client can tell a
 * wedged supervisor from a long reload), then with one JSON reply line, and
 * closes the connection.
 */
import { MAX_WORKERS } from "../config/limits.ts";
import type { ErrorKind } from "../errors.ts";
import { MAX_LOG_LINES } from "./logs_stream.ts";

/** The line a supervisor sends as soon as it has read a well-formed request. */
export const ACCEPTED = '{"accepted":true}';

/** What a control client can ask. */
export type ControlRequest =
  /**
   * `successor`: the pid of a supervisor taking this instance over (run
   * --takeover); it speaks to systemd from now on, so this one never says
   * STOPPING=1. Versions before takeover ignore it.
   */
  | { cmd: "stop"; fast?: boolean; successor?: number }
  /**
   * `hotreload upgrade`: the supervisor starts its successor, `run --takeover`
   * with `args` (the run arguments, default its own), and replies once that
   * one has taken over or has failed.
   */
  | { cmd: "upgrade"; args?: string[] }
  | { cmd: "reload"; workers?: boolean; processes?: boolean }
  | { cmd: "status" }
  | { cmd: "scale"; workers: number }
  | { cmd: "send"; name: string; message: unknown }
  | { cmd: "restart"; name: string }
  /**
   * `hotreload logs`: the last `lines` of the instance's output, then, when
   * `follow`, every new line; the socket server answers it (logs_stream.ts).
   */
  | { cmd: "logs"; lines: number; follow?: boolean };

/**
 * Every state a `status` row can be in (`status --help` lists them all:
 * src/cli/help_test.ts). `held`: replaced, out of service, its connections'
 * requests sent on to new code until the whole new generation serves; then
 * it drains.
 */
export const ROW_STATES = [
  "spare",
  "starting",
  "ready",
  "held",
  "draining",
  "backoff",
  "errored",
  "stopped",
] as const;

/** One row of `hotreload status`: a worker or custom-process instance. */
export interface StatusRow {
  /** A spare is not a worker yet: it waits to be released as one. */
  role: "worker" | "spare" | "process";
  id: number | string;
  pid: number | null;
  state: (typeof ROW_STATES)[number];
  generation: number | null;
  uptimeMs: number | null;
  restarts: number;
  rssBytes: number | null;
  cpuPercent: number | null;
  requests: number | null;
  /** While draining: requests (streams included) still being answered, when known. */
  open: number | null;
  /** The ports a worker listens on (every pool listener's), as it reported them. */
  ports: number[] | null;
}

/** What `status` answers; `hotreload status --json` prints it (documented in the README). */
export interface StatusReport {
  supervisor: {
    name: string;
    pid: number;
    uptimeMs: number;
    phase: "starting" | "running" | "stopping" | "stopped";
    entry: string;
    port: number | null;
    host: string | null;
    boundPorts: number[];
    workers: number;
    generation: number;
    watcher: "events" | "poll" | null;
    /**
     * Watching: the local files each child kind imports (its module graph),
     * whether they are current, or null when they cannot be computed.
     */
    graphs?: { current: boolean; workers: number; processes: Record<string, number> } | null;
    /**
     * The supervisor this one succeeded (it had died; its workers served until
     * this one's were ready), or null.
     */
    succeeded?: { pid: number; version: string | null; workers: number; at: string } | null;
    /**
     * The instance this one took over (run --takeover): its supervisor's pid
     * and version, when it was gone, and how long after this one started.
     */
    tookOver?: { pid: number; version: string | null; at: string; afterMs: number } | null;
    /** How new connections avoid a draining worker (src/handover/). */
    handover: "ebpf" | "kernel" | "none" | null;
    reloading: boolean;
    lastReload: { generation: number; ok: boolean; message: string; at: string } | null;
    rssBytes: number;
    /** Lines dropped because our stdout or stderr was closed or failing. */
    droppedLines: number;
  };
  children: StatusRow[];
}

/**
 * The supervisor's answer. A success may carry a sentence (`message`), the
 * status (`status`), or the generation a reload rolled out; a failure says
 * what went wrong and its kind (the CLI turns that into its exit code).
 */
export type ControlReply =
  | { ok: true; message?: string; status?: StatusReport; generation?: number }
  | { ok: false; error: string; kind?: ErrorKind };

const isName = (value: unknown) => typeof value === "string" && value.length <= 64;
const isFlag = (value: unknown) => value === undefined || typeof value === "boolean";

// deno-lint-ignore no-explicit-any
type Fields = Record<string, any>;

/** What each request must hold (a command without an entry does not compile). */
const SHAPES: Record<ControlRequest["cmd"], (request: Fields) => boolean> = {
  stop: (r) =>
    isFlag(r.fast) &&
    (r.successor === undefined || Number.isInteger(r.successor) && r.successor > 1),
  reload: (r) => isFlag(r.workers) && isFlag(r.processes),
  status: () => true,
  scale: (r) => Number.isInteger(r.workers) && r.workers >= 1 && r.workers <= MAX_WORKERS,
  send: (r) => isName(r.name),
  restart: (r) => isName(r.name),
  logs: (r) =>
    Number.isInteger(r.lines) && r.lines >= 0 && r.lines <= MAX_LOG_LINES && isFlag(r.follow),
  upgrade: (r) =>
    r.args === undefined ||
    (Array.isArray(r.args) && r.args.length <= MAX_RUN_ARGS && r.args.every((arg: unknown) =>
      typeof arg === "string" && arg.length <= MAX_ARG_LENGTH && !arg.includes("\0")
    )),
};

/** At most this many run arguments in an `upgrade` request, each at most this long. */
const MAX_RUN_ARGS = 256;
const MAX_ARG_LENGTH = 4096;

/** Parses and checks one request line; throws with a one-line reason. */
export function parseRequest(line: string): ControlRequest {
  const request = JSON.parse(line);
  const cmd = request?.cmd;
  if (typeof request !== "object" || typeof cmd !== "string" || !Object.hasOwn(SHAPES, cmd)) {
    throw new Error(`unknown control request ${JSON.stringify(cmd ?? request)}`);
  }
  if (!SHAPES[cmd as ControlRequest["cmd"]](request)) {
    const hint = cmd === "scale" ? `: workers must be a whole number from 1 to ${MAX_WORKERS}` : "";
    throw new Error(`malformed "${cmd}" request${hint}`);
  }
  return request as ControlRequest;
}
