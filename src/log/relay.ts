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

/** Writes one child line with its prefix (or as a JSON object). */
export function relayLine(stream: StreamName, source: LineSource, line: string): void {
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
