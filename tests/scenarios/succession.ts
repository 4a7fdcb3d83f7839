/**
 * Succession: supervisor A (2 workers, `--orphan-grace 10000`) is killed
 * with SIGKILL under keep-alive and new-connection load; its workers keep
 * serving; a plain `run` C of the same name (3 workers, newer code) adopts
 * them: its workers start, then it drains A's. Reports the failures of both
 * loads, what status says, and whether anything of A is left. Runs in a
 * network namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, makeProject, runCli, taggedPids, waitFor } from "../helpers.ts";
import { requestLoop, seenOf, waitForBody } from "../load.ts";

const { handover } = JSON.parse(Deno.args[0]) as { handover: "ebpf" | "kernel" };
const app = (body: string) => `Deno.serve(() => new Response(${JSON.stringify(body)}));\n`;

const dir = await makeProject({ "main.ts": app("v1") });
const port = freePort();
const args = (workers: number) =>
  ["run", "main.ts", "-N", "--no-watch", "--port", String(port), "-w", String(workers)].concat(
    ["--handover", handover, "--orphan-grace", "10000"],
  );
const a = new Hotreload(args(2), dir);
let c: Hotreload | undefined;
try {
  await a.waitForReady(2);
  const keepAlive = requestLoop(port, 4);
  const fresh = requestLoop(port, 4, { fresh: true });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const orphans = taggedPids(a.tag).filter((pid) => pid !== a.pid);
  const killedAt = performance.now();
  a.signal("SIGKILL");
  await a.status;
  // The orphans serve on their own for a while (a service manager restarts the unit).
  await new Promise((resolve) => setTimeout(resolve, 500));
  const servedAlone = keepAlive.peek().ok + fresh.peek().ok;
  await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
  c = new Hotreload(args(3), dir);
  await c.waitForReady(3);
  await c.waitForOutput(/succeeded supervisor pid \d+, which had died/);
  await waitFor(() => taggedPids(a.tag).length === 0, "A's workers gone", 15_000);
  const goneAfterMs = Math.round(performance.now() - killedAt);
  await waitForBody(port, "v2");
  await new Promise((resolve) => setTimeout(resolve, 300));
  const [ka, nc] = [await keepAlive.stop(), await fresh.stop()];
  const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
  console.log(JSON.stringify({
    steered: c.output.has("handover: steered (eBPF)"),
    orphans: orphans.length,
    servedAlone,
    goneAfterMs,
    keepAlive: seenOf(ka),
    fresh: seenOf(nc),
    bodies: Object.keys({ ...ka.bodies, ...nc.bodies }).sort(),
    succeeded: status.supervisor.succeeded,
    killed: a.pid,
    workers: status.children.filter((row: { role: string; state: string }) =>
      row.role === "worker" && row.state === "ready"
    ).length,
  }));
} finally {
  await c?.cleanup();
  await a.cleanup();
  await Deno.remove(dir, { recursive: true });
}
