/**
 * `hotreload logs [--lines N] [-f]`: the instance's recent output (the
 * supervisor's lines and its children's, prefixed as it prints them), from
 * the supervisor's output buffer through the control socket; `-f` follows
 * until Ctrl-C (exit 0) or until the instance stops (a last line says so).
 * When the instance is not running, an instance started with --detach left
 * its output in .hotreload/<name>/output.log: that is shown instead.
 */
import { targetInstance } from "../../control/client.ts";
import { readJsonLines } from "../../control/logs_stream.ts";
import { instanceDir } from "../../control/instance_dir.ts";
import { socketPath } from "../../control/socket.ts";
import { projectDir } from "../../control/instances.ts";
import { HotreloadError, NotRunningError } from "../../errors.ts";
import { writeAllSync } from "../../log/mod.ts";
import { lastLinesOfFile, OUTPUT_FILE } from "../../log/output_file.ts";
import { parseControlArgs } from "../control_args.ts";
import { LOGS_HELP } from "../help.ts";

/** Lines shown when --lines is not given. */
export const DEFAULT_LINES = 50;

export async function logsCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("logs", LOGS_HELP, argv);
  if (!args) return 0;
  const { values } = args;
  const lines = values.lines === undefined ? DEFAULT_LINES : Number(values.lines);
  let target;
  try {
    target = targetInstance(values);
  } catch (error) {
    // Not running: a detached instance's output is still in its file.
    if (!(error instanceof NotRunningError) || values.follow) throw error;
    return printOutputFile(values, lines, error);
  }
  const { cwd, instance } = target;
  const path = socketPath(instanceDir(cwd, instance.name));
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path });
  } catch {
    throw new HotreloadError(`"${instance.name}" does not answer on its control socket`);
  }
  // Ctrl-C ends a follow: a clean exit, not an error.
  let interrupted = false;
  const onInterrupt = () => {
    interrupted = true;
    try {
      conn.close();
    } catch { /* closed */ }
  };
  Deno.addSignalListener("SIGINT", onInterrupt);
  let failure: string | undefined;
  let end: string | undefined;
  try {
    await conn.write(
      new TextEncoder().encode(
        JSON.stringify({ cmd: "logs", lines, follow: values.follow === true }) + "\n",
      ),
    );
    await readJsonLines(conn, (message) => {
      if (message.ok === false) failure = String(message.error);
      else if (Array.isArray(message.lines)) {
        for (const line of message.lines) print(String(line));
      } else if (typeof message.line === "string") print(message.line);
      else if (typeof message.dropped === "number") {
        print(
          `[hotreload logs] ${message.dropped} line(s) dropped: this terminal reads too slowly`,
        );
      } else if (typeof message.end === "string") end = message.end;
    });
  } catch (error) {
    if (!interrupted) {
      throw new HotreloadError(`reading the output of "${instance.name}": ${error}`);
    }
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  if (failure !== undefined) throw new HotreloadError(failure);
  if (interrupted || !values.follow) return 0;
  // `end` comes when the supervisor closes its socket; without it, it went away at once (killed).
  console.error(
    `hotreload: "${instance.name}" (pid ${instance.pid}) ` +
      (end ? "stopped" : "went away (its control socket closed)") + "; no more output",
  );
  return 0;
}

function print(line: string): void {
  writeAllSync(Deno.stdout, line + "\n");
}

/** The output file a detached instance that is no longer running left, or the not-running error. */
function printOutputFile(
  values: { name?: string; dir?: string },
  lines: number,
  notRunning: Error,
): number {
  const cwd = projectDir(values.dir === undefined ? Deno.cwd() : Deno.realPathSync(values.dir));
  const name = values.name;
  if (name === undefined) throw notRunning;
  const file = `${instanceDir(cwd, name)}/${OUTPUT_FILE}`;
  const found = lastLinesOfFile(file, lines);
  if (found === undefined) throw notRunning;
  console.error(`hotreload: "${name}" is not running; its last output, from ${file}:`);
  for (const line of found) print(line);
  return 0;
}
