/**
 * `hotreload logs [--lines N] [-f]`: the instance's recent output (the
 * supervisor's lines and its children's, prefixed as it prints them), from
 * the supervisor's output buffer through the control socket; `-f` follows
 * until Ctrl-C (exit 0) or until the instance stops (a last line says so;
 * an instance taken over by a new supervisor is followed on). When the
 * instance is not running, an instance started with --detach left its
 * output in .hotreload/<name>/output.log: that is shown instead.
 */
import { targetInstance } from "../../control/client.ts";
import { readJsonLines } from "../../control/logs_stream.ts";
import {
  instanceDir,
  type InstanceRecord,
  runtimeRoot,
  TAKEOVER_SOCKET_FILE,
} from "../../control/instance_dir.ts";
import { socketPath } from "../../control/socket.ts";
import { projectDir } from "../../control/instances.ts";
import { HotreloadError, NotRunningError } from "../../errors.ts";
import { writeAllSync } from "../../log/mod.ts";
import { lastLinesOfFile, OUTPUT_FILE } from "../../log/output_file.ts";
import { parseControlArgs } from "../control_args.ts";
import { LOGS_HELP } from "../help.ts";

/** Lines shown when --lines is not given. */
export const DEFAULT_LINES = 50;

/** How long a follower waits for a supervisor taking the instance over to have its name. */
const TAKEOVER_WAIT_MS = 15_000;

/** How one connection's reading ended. */
type Ending = "interrupted" | "done" | "stopped" | "gone";

export async function logsCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("logs", LOGS_HELP, argv);
  if (!args) return 0;
  const { values } = args;
  const follow = values.follow === true;
  let lines = values.lines === undefined ? DEFAULT_LINES : Number(values.lines);
  let target;
  try {
    target = targetInstance(values);
  } catch (error) {
    // Not running: a detached instance's output is still in its file.
    if (!(error instanceof NotRunningError) || follow) throw error;
    return printOutputFile(values, lines, error);
  }
  let { instance } = target;
  const { cwd } = target;
  while (true) {
    const ending = await readOutput(cwd, instance, lines, follow);
    if (ending === "interrupted" || ending === "done") return 0;
    // A takeover (upgrade): the instance goes on under a new supervisor; follow it there.
    const successor = ending === "stopped" ? await awaitSuccessor(cwd, instance) : undefined;
    if (successor) {
      console.error(
        `hotreload: "${instance.name}" was taken over by supervisor pid ${successor.pid}; ` +
          `following it`,
      );
      instance = successor;
      lines = 0;
      continue;
    }
    // Without an end line, the supervisor went away at once (killed).
    console.error(
      `hotreload: "${instance.name}" (pid ${instance.pid}) ` +
        (ending === "stopped" ? "stopped" : "went away (its control socket closed)") +
        "; no more output",
    );
    return 0;
  }
}

/** The instance's new supervisor, when another one now runs it. */
function successorOf(cwd: string, instance: InstanceRecord): InstanceRecord | undefined {
  try {
    const now = targetInstance({ dir: cwd, name: instance.name }).instance;
    return now.pid !== instance.pid ? now : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The supervisor taking the instance over, once it has the name, while a
 * takeover is under way (its socket, takeover.sock, goes once it has).
 */
async function awaitSuccessor(
  cwd: string,
  instance: InstanceRecord,
): Promise<InstanceRecord | undefined> {
  const takeoverSocket = `${instanceDir(cwd, instance.name)}/${TAKEOVER_SOCKET_FILE}`;
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  while (true) {
    const next = successorOf(cwd, instance);
    if (next) return next;
    try {
      Deno.lstatSync(takeoverSocket);
    } catch {
      // No takeover under way: a last look, since it may have claimed the name just now.
      return successorOf(cwd, instance);
    }
    if (Date.now() > deadline) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Prints the instance's last `lines`, and when `follow`, what follows; how it ended. */
async function readOutput(
  cwd: string,
  instance: InstanceRecord,
  lines: number,
  follow: boolean,
): Promise<Ending> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({
      transport: "unix",
      path: socketPath(instanceDir(cwd, instance.name)),
    });
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
      new TextEncoder().encode(JSON.stringify({ cmd: "logs", lines, follow }) + "\n"),
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
  if (interrupted) return "interrupted";
  if (!follow) return "done";
  return end === undefined ? "gone" : "stopped";
}

function print(line: string): void {
  writeAllSync(Deno.stdout, line + "\n");
}

/** The names of the instances under `cwd` that left an output file. */
function withOutputFiles(cwd: string): string[] {
  try {
    return [...Deno.readDirSync(runtimeRoot(cwd))]
      .filter((entry) => entry.isDirectory)
      .map((entry) => entry.name)
      .filter((name) => {
        try {
          return Deno.lstatSync(`${instanceDir(cwd, name)}/${OUTPUT_FILE}`).isFile;
        } catch {
          return false;
        }
      });
  } catch {
    return [];
  }
}

/** The output file a detached instance that is no longer running left, or the not-running error. */
function printOutputFile(
  values: { name?: string; dir?: string },
  lines: number,
  notRunning: Error,
): number {
  const cwd = projectDir(values.dir === undefined ? Deno.cwd() : Deno.realPathSync(values.dir));
  const names = values.name === undefined ? withOutputFiles(cwd) : [values.name];
  // Without --name, only when one instance left its output here.
  if (names.length !== 1) throw notRunning;
  const file = `${instanceDir(cwd, names[0])}/${OUTPUT_FILE}`;
  const found = lastLinesOfFile(file, lines);
  if (found === undefined) throw notRunning;
  console.error(`hotreload: "${names[0]}" is not running; its last output, from ${file}:`);
  for (const line of found) print(line);
  return 0;
}
