/**
 * Takeover, then succession, under keep-alive and new-connection load at
 * once. Instance A (2 workers) serves v1. A `run --takeover` of code that
 * binds and then throws fails: exit 1, and A, never told, keeps serving. B
 * (`--takeover`, 3 workers, v2) takes A over. B is killed with SIGKILL; its
 * workers serve on (`--orphan-grace 10000`) until a plain `run` C (v3)
 * adopts them. Reports both loads' failures, the time from the takeover
 * command to A's exit, what status said, and what is left after `stop`.
 * Runs in a network namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, makeProject, runCli, taggedPids, waitFor } from "../helpers.ts";
import { requestLoop, seenOf, waitForBody } from "../load.ts";

/** A load's answers and failures in one phase. */
export type Load = ReturnType<typeof seenOf>;

/** What this scenario prints (its last line). */
export interface TakeoverResult {
  steered: boolean;
  failedTakeover: {
    code: number;
    said: boolean;
    keptServing: boolean;
    statusPid: number;
    servedAfter: number;
    failedRequests: number;
    brokenAnswers: number;
    files: string[];
  };
  a: number;
  b: number;
  c: number;
  takeoverMs: number;
  tookOver: { pid: number; version: string | null; afterMs: number } | null;
  workersAfterTakeover: number;
  succeeded: { pid: number; workers: number } | null;
  workersAfterSuccession: number;
  statusPid: number;
  takeover: Record<"keepAlive" | "fresh", Load>;
  succession: Record<"keepAlive" | "fresh", Load>;
  bodies: string[];
  stopCode: number;
  left: number;
  runtimeDirLeft: boolean;
}

const { handover, watching = false } = JSON.parse(Deno.args[0]) as {
  handover: "ebpf" | "kernel" | "none";
  /** Watching defaults (spares, a 100 ms close window, a watcher) on a folder the scenario never edits. */
  watching?: boolean;
};
const app = (body: string) => `Deno.serve(() => new Response(${JSON.stringify(body)}));\n`;
/** New code that binds its port, then fails: it must never replace working code. */
const BROKEN = `Deno.serve(() => new Response("broken"));\n` +
  `await new Promise((resolve) => setTimeout(resolve, 100));\n` +
  `throw new Error("the new code cannot start");\n`;

const dir = await makeProject({ "main.ts": app("v1"), "watched/keep.txt": "" });
// Watching main.ts itself would make each instance reload the code written for the next one.
const watch = watching ? ["--watch", "watched"] : ["--no-watch"];
const port = freePort();
const run = (workers: number, ...extra: string[]) =>
  new Hotreload(
    ["run", "main.ts", "-N", ...watch, "--port", String(port), "-w", String(workers)].concat(
      ["--handover", handover, "--orphan-grace", "10000", ...extra],
    ),
    dir,
  );
const statusOf = async () => JSON.parse((await runCli(["status", "--json"], dir)).stdout);
const readyWorkers = (status: { children: { role: string; state: string }[] }) =>
  status.children.filter((row) => row.role === "worker" && row.state === "ready").length;
/** A load's answers and failures between two readings of it. */
const load = (
  before: { ok: number; failures: string[] },
  after: { ok: number; failures: string[] },
) => {
  const failures = after.failures.slice(before.failures.length);
  return seenOf({ ok: after.ok - before.ok, failures });
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const a = run(2);
const started: Hotreload[] = [a];
try {
  await a.waitForReady(2);
  const keepAlive = requestLoop(port, 4);
  const fresh = requestLoop(port, 4, { fresh: true });
  await pause(300);

  // A takeover whose new code cannot start.
  const readings = () => [keepAlive.peek(), fresh.peek()] as const;
  const atStart = readings();
  await Deno.writeTextFile(`${dir}/main.ts`, BROKEN);
  const failed = run(3, "--takeover");
  started.push(failed);
  const failedCode = (await failed.status).code;
  const afterFailure = await statusOf();
  const filesAfterFailure = [...Deno.readDirSync(`${dir}/.hotreload/main`)].map((e) => e.name);
  await pause(300);
  const afterFailedTakeover = readings();

  // B takes A over.
  await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
  const takeoverAt = performance.now();
  const b = run(3, "--takeover");
  started.push(b);
  await a.status;
  const takeoverMs = Math.round(performance.now() - takeoverAt);
  await b.waitForOutput(/took over "main" from pid \d+/);
  await waitFor(() => taggedPids(a.tag).length === 0, "A's workers gone", 15_000);
  await waitForBody(port, "v2");
  const afterTakeover = await statusOf();
  await pause(300);
  const beforeKill = readings();

  // B dies; C succeeds it.
  b.signal("SIGKILL");
  await b.status;
  await pause(500);
  await Deno.writeTextFile(`${dir}/main.ts`, app("v3"));
  const c = run(3);
  started.push(c);
  await c.waitForReady(3);
  await c.waitForOutput(/succeeded supervisor pid \d+, which had died/);
  await waitFor(() => taggedPids(b.tag).length === 0, "B's workers gone", 15_000);
  await waitForBody(port, "v3");
  await pause(300);
  const [ka, nc] = [await keepAlive.stop(), await fresh.stop()];
  const afterSuccession = await statusOf();
  const stop = await runCli(["stop"], dir);
  await c.status;
  const left = started.flatMap((run) => taggedPids(run.tag));
  const runtimeDirLeft = (() => {
    try {
      Deno.lstatSync(`${dir}/.hotreload`);
      return true;
    } catch {
      return false;
    }
  })();
  console.log(JSON.stringify({
    steered: a.output.has("handover: steered (eBPF)") && b.output.has("handover: steered (eBPF)"),
    failedTakeover: {
      code: failedCode,
      said: failed.output.has(
        /takeover aborted: worker \d+ exited with .*code 1: Error: the new code cannot start/,
      ),
      keptServing: failed.output.has(`"main" (pid ${a.pid}) keeps serving`),
      statusPid: afterFailure.supervisor.pid,
      servedAfter: load(atStart[0], afterFailedTakeover[0]).ok +
        load(atStart[1], afterFailedTakeover[1]).ok,
      files: filesAfterFailure.sort(),
      failedRequests: load(atStart[0], afterFailedTakeover[0]).failed +
        load(atStart[1], afterFailedTakeover[1]).failed,
      brokenAnswers: (keepAlive.peek().bodies.broken ?? 0) + (fresh.peek().bodies.broken ?? 0),
    },
    a: a.pid,
    b: b.pid,
    takeoverMs,
    tookOver: afterTakeover.supervisor.tookOver,
    workersAfterTakeover: readyWorkers(afterTakeover),
    succeeded: afterSuccession.supervisor.succeeded,
    workersAfterSuccession: readyWorkers(afterSuccession),
    statusPid: afterSuccession.supervisor.pid,
    c: c.pid,
    // Each phase's answers and failures (what the failed takeover cost is counted above).
    takeover: {
      keepAlive: load(afterFailedTakeover[0], beforeKill[0]),
      fresh: load(afterFailedTakeover[1], beforeKill[1]),
    },
    succession: { keepAlive: load(beforeKill[0], ka), fresh: load(beforeKill[1], nc) },
    bodies: Object.keys({ ...ka.bodies, ...nc.bodies }).sort(),
    stopCode: stop.code,
    left: left.length,
    runtimeDirLeft,
  }));
} finally {
  for (const run of started.reverse()) await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
