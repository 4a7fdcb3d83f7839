/**
 * The control socket's protocol: the client sends one JSON request line; the
 * supervisor answers at once with {@link ACCEPTED} (so a client can tell a
 * wedged supervisor from a long reload), then with one JSON reply line, and
 * closes the connection.
 */
import { MAX_WORKERS } from "../config/limits.ts";

/** The line a supervisor sends as soon as it has read a well-formed request. */
export const ACCEPTED = '{"accepted":true}';

/** What a control client can ask. */
export type ControlRequest =
  | { cmd: "stop"; fast?: boolean }
  | { cmd: "reload"; workers?: boolean; processes?: boolean }
  | { cmd: "status" }
  | { cmd: "scale"; workers: number }
  | { cmd: "send"; name: string; message: unknown }
  | { cmd: "restart"; name: string };

/** The supervisor's answer; `code` is the exit code the client should use on failure. */
export type ControlReply =
  | ({ ok: true; message?: string } & Record<string, unknown>)
  | { ok: false; error: string; code?: number };

const COMMANDS = new Set(["stop", "reload", "status", "scale", "send", "restart"]);

const isName = (value: unknown) => typeof value === "string" && value.length <= 64;
const isFlag = (value: unknown) => value === undefined || typeof value === "boolean";

/** Parses and checks one request line; throws with a one-line reason. */
export function parseRequest(line: string): ControlRequest {
  const request = JSON.parse(line);
  if (typeof request !== "object" || request === null || !COMMANDS.has(request.cmd)) {
    throw new Error(`unknown control request ${JSON.stringify(request?.cmd ?? request)}`);
  }
  const ok = request.cmd === "stop"
    ? isFlag(request.fast)
    : request.cmd === "reload"
    ? isFlag(request.workers) && isFlag(request.processes)
    : request.cmd === "scale"
    ? Number.isInteger(request.workers) && request.workers >= 1 && request.workers <= MAX_WORKERS
    : request.cmd === "send" || request.cmd === "restart"
    ? isName(request.name)
    : true;
  if (!ok) {
    const hint = request.cmd === "scale"
      ? `: workers must be a whole number from 1 to ${MAX_WORKERS}`
      : "";
    throw new Error(`malformed "${request.cmd}" request${hint}`);
  }
  return request as ControlRequest;
}
