/**
 * Relays children's output: each line gets a prefix naming the child
 * (`[worker 2 1234] `), stdout to stdout and stderr to stderr. With
 * `--log-format json` each line becomes one JSON object instead.
 */
import { logFormat, printOutput } from "./mod.ts";

/** Which of the supervisor's streams a child line goes to. */
export type StreamName = "stdout" | "stderr";

/** Who printed a line. */
export interface LineSource {
  role: "worker" | "process";
  id: number | string;
  label: string;
  pid: number;
}

/** Who else is handed each relayed line (the dashboard's output), if anyone. */
let tap: ((stream: StreamName, source: LineSource, line: string) => void) | undefined;

/** Hands every line relayed from now on to `listener` as well (undefined: to nobody). */
export function tapRelayedLines(
  listener: ((stream: StreamName, source: LineSource, line: string) => void) | undefined,
): void {
  tap = listener;
}

/** Writes one child line with its prefix (or as a JSON object). */
export function relayLine(stream: StreamName, source: LineSource, line: string): void {
  tap?.(stream, source, line);
  const text = logFormat() === "json"
    ? JSON.stringify({
      time: new Date().toISOString(),
      level: stream === "stderr" ? "warning" : "info",
      event: "output",
      role: source.role,
      id: source.id,
      pid: source.pid,
      stream,
      message: line,
    })
    : `[${source.label} ${source.pid}] ${line}`;
  printOutput(stream === "stdout" ? Deno.stdout : Deno.stderr, text + "\n");
}
