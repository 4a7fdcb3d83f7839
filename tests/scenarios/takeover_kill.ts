/**
 * A takeover's new supervisor killed at its worst moment, under keep-alive
 * and new-connection load at once. A (2 workers) serves v1; B (`--takeover`,
 * 2 workers, v2) is killed with SIGKILL at `point`:
 *
 * - `before-ready`: its workers are started (and recorded), not yet ready;
 * - `switch`: its workers have just taken over the port, the old instance is
 *   being asked to stop;
 * - `after-answer`: 0.3 s after a client first got v2;
 * - `old-draining`: while the old instance drains.
 *
 * Its workers serve on (`--orphan-grace 10000`). Then C (v3) takes over
 * (`run --takeover` while A lives, a plain `run` once it is gone) and adopts
 * them. Every request from the takeover to C serving is counted.
 * Runs in a network namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, makeProject, runCli, taggedPids, waitFor } from "../helpers.ts";
import { requestLoop, waitForBody } from "../load.ts";

export type KillPoint = "before-ready" | "switch" | "after-answer" | "old-draining";

/** What this scenario prints (its last line). */
export interface TakeoverKillResult {
  point: KillPoint;
  steered: boolean;
  /** How C ended it: by taking over A, or by succeeding it. */
  recovery: "takeover" | "succession";
  keepAlive: { ok: number; failed: number; sample: string[] };
  fresh: { ok: number; failed: number; sample: string[] };
  /** B's workers left after C served (adopted and drained: 0). */
  orphansLeft: number;
  adopted: boolean;
  left: number;
}

const { handover, point } = JSON.parse(Deno.args[0]) as {
  handover: "ebpf" | "kernel" | "none";
  point: KillPoint;
};
const app = (body: string) => `Deno.serve(() => new Response(${JSON.stringify(body)}));\n`;

const dir = await makeProject({ "main.ts": app("v1") });
const port = freePort();
const run = (...extra: string[]) =>
  new Hotreload(
    ["run", "main.ts", "-N", "--no-watch", "--port", String(port), "-w", "2"].concat(
      ["--handover", handover, "--orphan-grace", "10000", ...extra],
    ),
    dir,
  );
/** B's record of its workers (takeover-<pid>.json), once written. */
const takeoverRecord = (pid: number) => {
  try {
    return JSON.parse(Deno.readTextFileSync(`${dir}/.hotreload/main/takeover-${pid}.json`));
  } catch {
    return undefined;
  }
};
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const a = run();
const started: Hotreload[] = [a];
try {
  await a.waitForReady(2);
  const keepAlive = requestLoop(port, 4);
  const fresh = requestLoop(port, 4, { fresh: true });
  await pause(300);

  await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
  const b = run("--takeover");
  started.push(b);
  if (point === "before-ready") {
    await waitFor(
      () => takeoverRecord(b.pid)?.workers?.length === 2,
      "B's workers recorded",
      20_000,
      2,
    );
  } else if (point === "switch") {
    await b.waitForOutput(/stopping the old instance/);
  } else if (point === "after-answer") {
    await waitFor(
      () => (keepAlive.peek().bodies.v2 ?? 0) + (fresh.peek().bodies.v2 ?? 0) > 0,
      "v2",
    );
    await pause(300);
  } else {
    await a.waitForOutput(/stopping \(taken over by supervisor pid/);
  }
  b.signal("SIGKILL");
  await b.status;
  await pause(300);

  // C: a takeover while A lives, a plain run once it is gone.
  await Deno.writeTextFile(`${dir}/main.ts`, app("v3"));
  const aAlive = await Promise.race([a.status.then(() => false), pause(0).then(() => true)]);
  const c = aAlive ? run("--takeover") : run();
  started.push(c);
  await c.waitForReady(2);
  // C has the name once the old instance is gone (a takeover waits for it).
  await c.waitForOutput(aAlive ? /took over "main" from pid/ : /2 worker\(s\) ready/, 30_000);
  await waitForBody(port, "v3");
  let orphansLeft = 0;
  try {
    await waitFor(() => taggedPids(b.tag).length === 0, "B's workers gone", 20_000);
  } catch {
    orphansLeft = taggedPids(b.tag).length;
  }
  await pause(300);
  const [ka, nc] = [await keepAlive.stop(), await fresh.stop()];
  await runCli(["stop"], dir);
  await c.status;
  const summary = (seen: { ok: number; failures: string[] }) => ({
    ok: seen.ok,
    failed: seen.failures.length,
    sample: seen.failures.slice(0, 3),
  });
  console.log(JSON.stringify(
    {
      point,
      steered: a.output.has("handover: steered (eBPF)"),
      recovery: aAlive ? "takeover" : "succession",
      keepAlive: summary(ka),
      fresh: summary(nc),
      orphansLeft,
      adopted: c.output.has(/succeeded supervisor pid \d+|its \d+ worker\(s\) left serving drain/),
      left: started.flatMap((r) => taggedPids(r.tag)).length,
    } satisfies TakeoverKillResult,
  ));
} finally {
  for (const r of started.reverse()) await r.cleanup();
  await Deno.remove(dir, { recursive: true });
}
