/**
 * An app with two ports, its admin server created first: the API on PORT, a
 * /health server on a fixed admin port. 2 workers, watching; keep-alive and
 * new-connection clients on both ports through 2 edits and a `reload`.
 * Reports failures per port, what `status --json` says of the ports, and
 * whether the "app ignores --port" warning appeared. Runs in a network
 * namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, makeProject, runCli, waitFor, watchingArgs } from "../helpers.ts";
import { requestLoop, seenOf } from "../load.ts";

const { handover } = JSON.parse(Deno.args[0]) as { handover: "ebpf" | "kernel" | "none" };

const adminPort = freePort();
const app = (version: number) =>
  `// The admin server first, on its own fixed port.
Deno.serve({ port: ${adminPort} }, () => new Response("healthy v${version}"));
Deno.serve({ port: Number(Deno.env.get("PORT")) }, () => new Response("v${version}"));
`;

async function status(dir: string) {
  return JSON.parse((await runCli(["status", "--json"], dir)).stdout);
}

const dir = await makeProject({ "main.ts": app(1) });
const port = freePort();
const run = new Hotreload(
  watchingArgs(port, "-w", "2", "--handover", handover, "--allow-env"),
  dir,
);
try {
  await run.waitForReady(2);
  const loads = {
    api: [requestLoop(port, 4), requestLoop(port, 4, { fresh: true })],
    admin: [requestLoop(adminPort, 4), requestLoop(adminPort, 4, { fresh: true })],
  };
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (let version = 2; version <= 4; version++) {
    if (version === 4) {
      const reload = await runCli(["reload"], dir);
      if (reload.code !== 0) throw new Error(`reload: ${reload.stderr}`);
    } else {
      await Deno.writeTextFile(`${dir}/main.ts`, app(version));
    }
    await waitFor(async () => {
      const { supervisor } = await status(dir);
      return supervisor.generation === version && !supervisor.reloading;
    }, `generation ${version} serving`);
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const seen: Record<string, ReturnType<typeof seenOf>> = {};
  for (const [name, [keepAlive, fresh]] of Object.entries(loads)) {
    for (const [kind, load] of [["keep-alive", keepAlive], ["new connection", fresh]] as const) {
      seen[`${name}, ${kind}`] = seenOf(await load.stop());
    }
  }
  const { supervisor, children } = await status(dir);
  // Workers that drain are out of service (they close their idle connections after the close window).
  const workers = children.filter((row: { role: string; state: string }) =>
    row.role === "worker" && row.state !== "draining" && row.state !== "held"
  );
  console.log(JSON.stringify({
    steered: run.output.has("handover: steered (eBPF)"),
    port,
    adminPort,
    seen,
    boundPorts: supervisor.boundPorts,
    workerPorts: workers.map((row: { ports: number[] }) => row.ports),
    wrongPortWarning: run.output.has("ignores --port"),
    unsteered: run.output.has("not steering new connections"),
  }));
} finally {
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
