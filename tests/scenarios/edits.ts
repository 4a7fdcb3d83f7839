/**
 * The watching defaults under load: `workers` workers, `clients` clients
 * (keep-alive, or a new connection per request), `edits` saves of the entry,
 * each awaited until every client has had the new answer and the reload is
 * done. Counts failed requests and stale answers. Runs in a network
 * namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, makeProject, runCli, waitFor, watchingArgs } from "../helpers.ts";
import { loadState, versionedLoad } from "../load.ts";

const { workers, clients, edits, fresh, handover } = JSON.parse(Deno.args[0]) as {
  workers: number;
  clients: number;
  edits: number;
  fresh: boolean;
  handover: "ebpf" | "kernel" | "none";
};
const app = (version: number) => `Deno.serve(() => new Response("v${version}"));\n`;

const dir = await makeProject({ "main.ts": app(1) });
const port = freePort();
const run = new Hotreload(
  watchingArgs(port, "-w", String(workers), "--handover", handover),
  dir,
);
try {
  await run.waitForReady(workers);
  // A new-connection prober shares the state: an answer is stale against the
  // first new answer anyone got, not just these clients (not counted itself).
  const state = loadState();
  const load = versionedLoad(port, clients, fresh, state);
  const prober = versionedLoad(port, 1, true, state);
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let version = 2; version <= edits + 1; version++) {
    Object.assign(state, { trigger: "edits", version, firstNew: Infinity });
    await Deno.writeTextFile(`${dir}/main.ts`, app(version));
    await waitFor(() => load.latest >= version, `v${version} answered`);
    await waitFor(async () => {
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      return !status.supervisor.reloading;
    }, `the reload to v${version} done`);
  }
  await Promise.all([load.stop(), prober.stop()]);
  const steered = run.output.has("handover: steered (eBPF)");
  console.log(JSON.stringify({ steered, ...load.byTrigger.edits }));
} finally {
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
