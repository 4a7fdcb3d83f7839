/**
 * The supervisor's own log: one line per event on stderr, human-readable
 * ("pretty") or one JSON object per line ("json"). Everything goes through
 * `@logtape/logtape`; this module is the only one that imports it.
 */
import { configureSync, getLogger, type LogRecord, resetSync } from "@logtape/logtape";
import { supervisorOutput } from "./output_buffer.ts";

/** How log lines look. */
export type LogFormat = "pretty" | "json";

/** Structured fields every event may carry (json output keeps them as keys). */
export interface LogFields {
  role?: "supervisor" | "worker" | "process";
  id?: number | string;
  pid?: number;
  generation?: number;
  [key: string]: unknown;
}

const encoder = new TextEncoder();

let droppedWrites = 0;

/** How many lines were dropped because our stdout or stderr was closed (or full and failing). */
export function droppedOutput(): number {
  return droppedWrites;
}

/**
 * Writes all of `text` to a stream, however many writes it takes. Never
 * throws: a supervisor whose stdout was closed (`hotreload run | head -1`)
 * drops and counts the line, and keeps serving.
 */
export function writeAllSync(stream: { writeSync(p: Uint8Array): number }, text: string): boolean {
  const bytes = encoder.encode(text);
  let written = 0;
  try {
    while (written < bytes.length) written += stream.writeSync(bytes.subarray(written));
    return true;
  } catch {
    droppedWrites++;
    return false;
  }
}

let toConsole = true;

/**
 * `run --detach`: once the instance is claimed, its output goes only to the
 * output buffer (and the file that follows it: output_file.ts), no longer to
 * stdout and stderr, which the parent that started it has closed.
 */
export function muteConsole(): void {
  toConsole = false;
}

/**
 * Prints one line of the instance's output (the supervisor's or a child's,
 * `text` ends with a newline) on `stream`, and keeps it in the output buffer
 * (`hotreload logs`) as printed, without colours.
 */
export function printOutput(
  stream: { writeSync(p: Uint8Array): number },
  text: string,
  plain = text,
): boolean {
  supervisorOutput.push(plain);
  return toConsole ? writeAllSync(stream, text) : true;
}

function useColor(): boolean {
  return Deno.stderr.isTerminal() && Deno.env.get("NO_COLOR") === undefined;
}

function prettyLine(record: LogRecord, color: boolean): string {
  const text = String(record.properties.message ?? record.message.join(""));
  const label = record.level === "warning"
    ? "warning: "
    : record.level === "error" || record.level === "fatal"
    ? "error: "
    : "";
  if (!color) return `[hotreload] ${label}${text}\n`;
  const tint = label === "" ? "" : record.level === "warning" ? "\x1b[33m" : "\x1b[31m";
  return `\x1b[2m[hotreload]\x1b[0m ${tint}${label}${text}${tint ? "\x1b[0m" : ""}\n`;
}

function jsonLine(record: LogRecord): string {
  const { message, event, ...fields } = record.properties;
  return JSON.stringify({
    time: new Date(record.timestamp).toISOString(),
    level: record.level,
    event,
    message,
    ...fields,
  }) + "\n";
}

let currentFormat: LogFormat = "pretty";

/** The format chosen by {@link setupLogging}. */
export function logFormat(): LogFormat {
  return currentFormat;
}

/** Sets up logging once per process; calling it again replaces the set-up. */
export function setupLogging(format: LogFormat = "pretty"): void {
  currentFormat = format;
  const color = useColor();
  resetSync();
  configureSync({
    reset: true,
    sinks: {
      stderr: (record: LogRecord) =>
        void (format === "json"
          ? printOutput(Deno.stderr, jsonLine(record))
          : printOutput(Deno.stderr, prettyLine(record, color), prettyLine(record, false))),
    },
    loggers: [
      { category: ["hotreload"], lowestLevel: "info", sinks: ["stderr"] },
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
    ],
  });
}

const logger = getLogger(["hotreload"]);

/**
 * Logs one event. `event` is a stable machine name (`worker.ready`), `message`
 * the human sentence; `fields` become keys of the json output.
 */
export const log = {
  info(event: string, message: string, fields: LogFields = {}): void {
    logger.info("{message}", { ...fields, event, message });
  },
  warn(event: string, message: string, fields: LogFields = {}): void {
    logger.warn("{message}", { ...fields, event, message });
  },
  error(event: string, message: string, fields: LogFields = {}): void {
    logger.error("{message}", { ...fields, event, message });
  },
};
