/**
 * The control socket's protocol: the client sends one JSON request line, the
 * supervisor answers with one JSON reply line and closes the connection.
 */

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

/** Parses and checks one request line; throws with a one-line reason. */
export function parseRequest(line: string): ControlRequest {
  const request = JSON.parse(line);
  if (typeof request !== "object" || request === null || !COMMANDS.has(request.cmd)) {
    throw new Error(`unknown control request ${JSON.stringify(request?.cmd ?? request)}`);
  }
  return request as ControlRequest;
}
