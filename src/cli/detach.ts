/**
 * `hotreload run --detach` (and `hotreload start`): the supervisor runs in
 * the background, in a session of its own with stdin on /dev/null, and
 * writes its output to `.hotreload/<name>/output.log` (src/log/output_file.ts)
 * instead of a terminal. This command waits until its workers are ready,
 * prints its name, pid and port, and returns; when they never are (the
 * supervisor exits, the app fails to start, or it takes too long) it prints
 * the supervisor's failure lines, stops it, and exits 1: nothing is left
 * running.
 */
import { fileURLToPath } from "node:url";
import type { RunConfig } from "../config/settings.ts";
import { instanceDir, isLive, runningInstance } from "../control/instance_dir.ts";
import { sendControlRequest, socketPath } from "../control/socket.ts";
import type { StatusReport } from "../control/protocol.ts";
import { HotreloadError } from "../errors.ts";
import { attachOutputFile, OUTPUT_FILE } from "../log/output_file.ts";
import { supervisorOutput } from "../log/output_buffer.ts";
import { muteConsole } from "../log/mod.ts";

/** Set in a detached supervisor's environment: it writes its output to its file, not to stderr. */
export const DETACHED_ENV = "HOTRELOAD_DETACHED";

/** How long a detached start may take at least, before it counts as failed. */
const MIN_START_MS = 60_000;

/** Failure lines shown at most when a detached start fails. */
const FAILURE_LINES = 40;

/** In a detached supervisor, once it has claimed `dir`: output to the file only. */
export function detachedOutput(dir: string): (() => void) | undefined {
  if (Deno.env.get(DETACHED_ENV) !== "1") return undefined;
  const detach = attachOutputFile(dir, supervisorOutput);
  muteConsole();
  return detach;
}

/** The run arguments without --detach (app arguments, after "--", stay as they are). */
export function withoutDetach(args: string[]): string[] {
  const appArgs = args.indexOf("--");
  const ours = appArgs === -1 ? args : args.slice(0, appArgs);
  const rest = appArgs === -1 ? [] : args.slice(appArgs);
  return [...ours.filter((arg) => arg !== "--detach"), ...rest];
}

/** The size of a file, 0 when there is none. */
function sizeOf(path: string): number {
  try {
    return Deno.lstatSync(path).size;
  } catch {
    return 0;
  }
}

/** What the file holds from `offset` on (from its start if it was rotated meanwhile). */
function readFrom(path: string, offset: number): string {
  try {
    const bytes = Deno.readFileSync(path);
    return new TextDecoder().decode(bytes.subarray(bytes.length >= offset ? offset : 0));
  } catch {
    return "";
  }
}

/**
 * Starts the supervisor of `config` in the background with the run
 * arguments `runArgs` (without --detach) and waits for its workers; the
 * exit code.
 */
export async function detach(config: RunConfig, runArgs: string[]): Promise<number> {
  const dir = instanceDir(config.cwd, config.name);
  const running = runningInstance(dir);
  // Taking over is the one start beside a running instance of the name.
  if (running && !config.takeover) {
    throw new HotreloadError(
      `an instance named "${config.name}" is already running here (pid ${running.pid}); ` +
        `stop it with "hotreload stop --name ${config.name}" or choose another --name`,
    );
  }
  const outputPath = `${dir}/${OUTPUT_FILE}`;
  const offset = sizeOf(outputPath);
  // From source, the supervisor runs the same cli.ts; a compiled binary is its own entry.
  const prefix = Deno.build.standalone ? [] : ["run", "-A", fileURLToPath(Deno.mainModule)];
  const child = new Deno.Command(Deno.execPath(), {
    args: [...prefix, "run", ...withoutDetach(runArgs)],
    cwd: config.cwd,
    env: { [DETACHED_ENV]: "1" },
    stdin: "null",
    stdout: "null",
    // Until it has claimed the instance (its output goes to its file from then on), what
    // it says is ours to show: a bad flag, a port in use.
    stderr: "piped",
    detached: true,
  }).spawn();
  let exited: Deno.CommandStatus | undefined;
  const status = child.status.then((s) => exited = s);
  const early: string[] = [];
  const reading = (async () => {
    try {
      for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
        early.push(text);
      }
    } catch { /* closed */ }
  })();
  const failureLines = () => {
    const lines = (early.join("") + readFrom(outputPath, offset)).split("\n").filter((l) => l);
    return lines.slice(-FAILURE_LINES);
  };
  const startMs = Math.max(MIN_START_MS, config.readyTimeout * 2);
  const deadline = Date.now() + startMs;
  let why: string | undefined;
  let report: StatusReport | undefined;
  while (true) {
    if (exited) {
      why = `the supervisor exited with code ${exited.code} before its workers were ready`;
      break;
    }
    const record = runningInstance(dir);
    if (record?.pid === child.pid) {
      const answer = await sendControlRequest(socketPath(dir), { cmd: "status" });
      if (answer.kind === "reply" && answer.reply.ok && answer.reply.status) {
        report = answer.reply.status;
        if (report.supervisor.phase === "running") break;
        const failing = report.children.find((row) =>
          row.role === "worker" && (row.state === "backoff" || row.state === "errored")
        );
        if (failing) {
          why = `worker ${failing.id} failed to start`;
          break;
        }
      }
    }
    if (Date.now() > deadline) {
      why = `its workers were not ready within ${startMs} ms`;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  if (why === undefined) {
    // Ready: nothing of ours keeps it, nor waits for it.
    child.unref();
    await child.stderr.cancel().catch(() => {});
    const s = report!.supervisor;
    const port = s.port ?? s.boundPorts[0];
    console.log(
      `started "${s.name}" in the background: supervisor pid ${s.pid}` +
        (port === undefined ? "" : `, port ${port}`) + `, ${s.workers} worker(s) ready`,
    );
    console.error(
      `hotreload: its output: hotreload logs -f --name ${s.name}` +
        ` (also in ${outputPath}); stop it: hotreload stop --name ${s.name}`,
    );
    return 0;
  }
  // Failed: stop it (all of it: its workers are its children), then say why.
  if (!exited) {
    await sendControlRequest(socketPath(dir), { cmd: "stop", fast: true });
    const killAt = Date.now() + 15_000;
    while (!exited && Date.now() < killAt) await new Promise((r) => setTimeout(r, 50));
    if (!exited) {
      try {
        // Its own session and process group: the group is its pid.
        Deno.kill(-child.pid, "SIGKILL");
      } catch { /* gone */ }
    }
  }
  await status;
  await reading;
  const record = runningInstance(dir);
  if (record && isLive(record) && record.pid === child.pid) {
    throw new HotreloadError(`${why}, and it could not be stopped (pid ${child.pid})`);
  }
  for (const line of failureLines()) console.error(line);
  throw new HotreloadError(`"${config.name}" did not start: ${why}; nothing is left running`);
}
