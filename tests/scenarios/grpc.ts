/**
 * A grpc-js server as 4 workers, watching: 40 calls on new channels reach
 * all 4 pids; then 4 clients calling without pause, each on its own
 * channel, through 3 edits and a `reload`, count failed calls. Runs in a
 * network namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, runCli, waitFor } from "../helpers.ts";
import { npmProject } from "../frameworks.ts";
import { GREETER_PROTO, GRPC_CLIENT, grpcServer } from "../protocols.ts";

const { handover } = JSON.parse(Deno.args[0]) as { handover: "ebpf" | "kernel" | "none" };

interface Calls {
  ok: number;
  failed: string[];
  replies: string[];
}

/** Runs the client: `loops` calling at once, each until `untilFile` exists (or once). */
function calls(
  dir: string,
  port: number,
  loops: number,
  channels: "per-call" | "per-loop",
  untilFile?: string,
) {
  const args = ["run", "-A", "client.js", String(port), String(loops), channels];
  if (untilFile) args.push(untilFile);
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  }).spawn();
  return child.output().then((output) => {
    const text = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
    if (!output.success) throw new Error(`client: ${new TextDecoder().decode(output.stderr)}`);
    return JSON.parse(text) as Calls;
  });
}

async function generationDone(dir: string, generation: number): Promise<boolean> {
  const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
  return status.supervisor.generation === generation && !status.supervisor.reloading;
}

const dir = await npmProject({
  "greeter.proto": GREETER_PROTO,
  "main.js": grpcServer("v1"),
  "client.js": GRPC_CLIENT,
});
const port = freePort();
const run = new Hotreload(
  ["run", "main.js", "-A", "--port", String(port), "--host", "127.0.0.1", "-w", "4"].concat(
    ["--handover", handover],
  ),
  dir,
);
const stop = `${dir}/stop`;
let load: Promise<Calls> | undefined;
try {
  await run.waitForReady(4, 60_000);
  const spread = await calls(dir, port, 40, "per-call");
  // A channel per loop, as services keep one: a channel per call makes Deno's
  // node:http2 abort now and then, with or without hotreload (README: HTTP/2 and gRPC).
  load = calls(dir, port, 4, "per-loop", stop);
  await new Promise((resolve) => setTimeout(resolve, 500));
  for (let version = 2; version <= 4; version++) {
    await Deno.writeTextFile(`${dir}/main.js`, grpcServer(`v${version}`));
    await waitFor(
      () => generationDone(dir, version),
      () => `generation ${version} serving\n${run.output.text().slice(-4000)}`,
      30_000,
    );
  }
  const reload = await runCli(["reload"], dir);
  if (reload.code !== 0) throw new Error(`reload: ${reload.stderr}`);
  await new Promise((resolve) => setTimeout(resolve, 500));
  await Deno.writeTextFile(stop, "");
  const loaded = await load;
  const last = loaded.replies.at(-1) ?? "";
  console.log(JSON.stringify({
    steered: run.output.has("handover: steered (eBPF)"),
    spread: { ok: spread.ok, failed: spread.failed, pids: new Set(spread.replies).size },
    load: { ok: loaded.ok, failed: loaded.failed, last: last.split(" ")[0] },
    // Deno's node:http2 aborts now and then (an nghttp2 assertion), with or without hotreload.
    aborts: run.output.matches(/exited with signal SIGABRT/).length,
  }));
} finally {
  // The client ends whatever happened (it waits for this file).
  await Deno.writeTextFile(stop, "");
  await load?.catch(() => {});
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
