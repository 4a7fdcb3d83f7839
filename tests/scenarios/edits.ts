/**
 * The watching defaults under load: `workers` workers, `clients` clients
 * (keep-alive, or a new connection per request), `edits` saves of the entry,
 * each awaited until every client has had the new answer and the reload is
 * done. Counts failed requests and stale answers. Runs in a network
 * namespace (tests/netns.ts); prints JSON on its last line.
 *
 * `slow`: the app answers after 0.5 to 1.5 s (a database behind it), so
 * requests are in flight whenever a worker leaves service. `overtake`: each
 * edit is a build that writes the entry three times, 400 ms apart, so every
 * reload but the last is overtaken by the next change before it finished.
 */
import { freePort, Hotreload, makeProject, runCli, waitFor, watchingArgs } from "../helpers.ts";
import { loadState, versionedLoad } from "../load.ts";

const { workers, clients, edits, fresh, handover, slow, overtake } = JSON.parse(Deno.args[0]) as {
  workers: number;
  clients: number;
  edits: number;
  fresh: boolean;
  handover: "ebpf" | "kernel" | "none";
  slow?: boolean;
  overtake?: boolean;
};
const app = (version: number) =>
  slow
    ? `Deno.serve(async () => {
  await new Promise((resolve) => setTimeout(resolve, 500 + Math.random() * 1000));
  return new Response("v${version}");
});\n`
    : `Deno.serve(() => new Response("v${version}"));\n`;
/** Writes per edit: a build rewrites the entry, each write overtaking the reload of the last. */
const WRITES = overtake ? 3 : 1;

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
  let version = 1;
  for (let edit = 1; edit <= edits; edit++) {
    for (let write = 1; write <= WRITES; write++) {
      version++;
      Object.assign(state, { trigger: "edits", version, firstNew: Infinity });
      await Deno.writeTextFile(`${dir}/main.ts`, app(version));
      if (write < WRITES) await new Promise((resolve) => setTimeout(resolve, 400));
    }
    await waitFor(() => load.latest >= version, `v${version} answered`, 30_000);
    await waitFor(async () => {
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      return !status.supervisor.reloading;
    }, `the reload to v${version} done`);
  }
  await Promise.all([load.stop(), prober.stop()]);
  const steered = run.output.has("handover: steered (eBPF)");
  const generations = run.output.matches(/reloading \d+ worker\(s\) to generation/).length;
  console.log(JSON.stringify({ steered, generations, ...load.byTrigger.edits }));
} finally {
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
