/**
 * `hotreload scale <n|+n|-n|auto>`: more or fewer workers; new ones join
 * ready-gated, removed ones drain (with --spares auto, the warm spares
 * follow). Waits until the new workers are ready (or the removed ones have
 * left service: they drain on, closing their idle connections after the
 * close window) and reports, as `reload` does.
 */
import { askOverSocket } from "../../control/client.ts";
import { MAX_WORKERS } from "../../config/limits.ts";
import { parseControlArgs, SCALE_TIMEOUT_MS } from "../control_args.ts";
import { HotreloadError, UsageError } from "../../errors.ts";
import { SCALE_HELP } from "../help.ts";

/** What `scale` was asked: a number of workers, a change of it, or one per CPU. */
export type ScaleTarget = { to: number } | { by: number } | { auto: true };

/** Parses `<n|+n|-n|auto>`; throws a one-line usage error. */
export function parseScaleTarget(raw: string): ScaleTarget {
  if (raw === "auto") return { auto: true };
  const match = /^([+-]?)(\d{1,7})$/.exec(raw);
  if (!match) {
    throw new UsageError(
      `scale needs a number of workers (1 to ${MAX_WORKERS}), +n, -n or auto (got "${raw}")`,
    );
  }
  const n = Number(match[2]);
  if (match[1] === "") return { to: n };
  if (n === 0) throw new UsageError(`scale ${raw} changes nothing; give +1 or more, -1 or more`);
  return { by: match[1] === "-" ? -n : n };
}

/** The number of workers `target` asks of an instance running `current`; throws when out of bounds. */
export function scaledWorkers(target: ScaleTarget, current: number, cpus: number): number {
  const workers = "to" in target ? target.to : "by" in target ? current + target.by : cpus;
  const asked = "by" in target
    ? ` (${current} ${target.by < 0 ? "-" : "+"} ${Math.abs(target.by)})`
    : "";
  if (workers < 1) {
    throw new UsageError(`cannot scale to ${workers} worker(s)${asked}: at least 1 must run`);
  }
  if (workers > MAX_WORKERS) {
    throw new UsageError(`cannot scale to ${workers} worker(s)${asked}: at most ${MAX_WORKERS}`);
  }
  return workers;
}

export async function scaleCommand(argv: string[]): Promise<number> {
  // "-1" would read as a flag: it is the count, whatever its place.
  const at = argv.findIndex((arg) => /^-\d+$/.test(arg));
  const negative = at === -1 ? undefined : argv[at];
  const args = parseControlArgs(
    "scale",
    SCALE_HELP,
    at === -1 ? argv : argv.toSpliced(at, 1, "0"),
  );
  if (!args) return 0;
  const { values, positionals } = args;
  const target = parseScaleTarget(negative ?? positionals[0]);
  const timeoutMs = values.timeout === undefined ? SCALE_TIMEOUT_MS : Number(values.timeout);
  const started = Date.now();
  let current = 0;
  if (!("to" in target)) {
    current = (await askOverSocket(values, { cmd: "status" })).status!.supervisor.workers;
  }
  const workers = scaledWorkers(target, current, navigator.hardwareConcurrency);
  const reply = await askOverSocket(values, { cmd: "scale", workers });
  console.error(`hotreload: ${reply.message}`);
  const deadline = started + timeoutMs;
  while (true) {
    const status = await askOverSocket(values, { cmd: "status" });
    const wanted = status.status!.supervisor.workers;
    if (wanted !== workers) {
      // Another scale (a command, SIGTTIN/SIGTTOU) changed the target: nothing to wait for.
      throw new HotreloadError(
        `the instance was scaled to ${wanted} worker(s) meanwhile (another scale command or ` +
          `SIGTTIN/SIGTTOU); run hotreload status to see its workers`,
      );
    }
    const rows = status.status!.children.filter((row) =>
      row.role === "worker" && row.state !== "draining" && row.state !== "held"
    );
    const ready = rows.filter((row) => row.state === "ready").length;
    if (rows.length === workers && ready === workers) {
      console.error(`hotreload: ${workers} worker(s) ready in ${Date.now() - started} ms`);
      return 0;
    }
    if (Date.now() > deadline) {
      const failing = rows.filter((row) => row.state === "backoff" || row.state === "errored");
      throw new HotreloadError(
        `after ${timeoutMs} ms, ${ready} of ${workers} worker(s) are ready` +
          (failing.length > 0 ? ` and ${failing.length} keep failing; see the instance's log` : ""),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
