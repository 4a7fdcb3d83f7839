/**
 * One row of the promise matrix: a switch (all, rolling) and a handover
 * (ebpf, kernel, none), watching, 2 workers, under keep-alive and
 * new-connection load at the same time, through every trigger in turn (an
 * edit, the reload command, SIGHUP, a worker crash, a recycle, scaling up and
 * down). For each trigger and client kind it counts failed requests and stale
 * answers (old code answering more than 50 ms after new code first did).
 * Runs in a network namespace (tests/netns.ts); prints JSON on its last line.
 */
import { freePort, Hotreload, makeProject, runCli, waitFor, watchingArgs } from "../helpers.ts";
import { loadState, versionedLoad } from "../load.ts";

const { switch: switchMode, handover } = JSON.parse(Deno.args[0]) as {
  switch: "all" | "rolling";
  handover: "ebpf" | "kernel" | "none";
};
const WORKERS = 2;
const CLIENTS = 8;

const app = (version: number) =>
  `Deno.serve((req) => new Response(new URL(req.url).pathname === "/pid" ? String(Deno.pid) : "v${version}"));\n`;

async function workers(dir: string) {
  const result = await runCli(["status", "--json"], dir);
  const status = JSON.parse(result.stdout);
  return {
    rows: status.children.filter((c: { role: string }) => c.role === "worker") as Array<
      { pid: number; state: string; generation: number }
    >,
    reloading: status.supervisor.reloading as boolean,
  };
}

/** What the last `settled` check saw, for a timeout's message. */
let lastStatus = "";

async function settled(dir: string, n: number): Promise<boolean> {
  const { rows, reloading } = await workers(dir);
  lastStatus = JSON.stringify({ reloading, rows });
  // Workers that drain are out of service (they close their idle connections after the close
  // window, and recycles keep some draining all the time): the ones in service count.
  const serving = rows.filter((r) => r.state !== "draining" && r.state !== "held");
  return !reloading && serving.length === n && serving.every((r) => r.state === "ready");
}

const dir = await makeProject({ "main.ts": app(1) });
const port = freePort();
// Watching (the edit trigger needs it), with the switch and handover of this row.
const run = new Hotreload(
  watchingArgs(port, "-w", String(WORKERS), "--switch", switchMode, "--handover", handover)
    .concat(["--max-requests", "4000", "--max-requests-jitter", "1000"]),
  dir,
);
const result: Record<string, unknown> = { switch: switchMode, handover };
try {
  await run.waitForReady(WORKERS);
  // One state: an answer is stale against the first new answer of either kind of client.
  const state = loadState();
  const keepAlive = versionedLoad(port, CLIENTS, false, state);
  const fresh = versionedLoad(port, CLIENTS, true, state);
  const both = [keepAlive, fresh];
  let version = 1;
  /** Writes the next version; `how` makes it go live. */
  const newCode = async (trigger: string, how: () => Promise<void>) => {
    version++;
    await Deno.writeTextFile(`${dir}/main.ts`, app(version));
    Object.assign(state, { trigger, version, firstNew: Infinity });
    await how();
    await waitFor(
      () => both.every((l) => l.latest >= version),
      () => `v${version} answered\n${run.output.text()}`,
    );
    await waitFor(
      () => settled(dir, WORKERS),
      () => `the reload to v${version} done\n${lastStatus}\n${run.output.text().slice(-4000)}`,
    );
  };
  const sameCode = async (trigger: string, how: () => Promise<void>, n = WORKERS) => {
    state.trigger = trigger;
    await how();
    await waitFor(
      () => settled(dir, n),
      () => `${trigger} done\n${lastStatus}\n${run.output.text().slice(-4000)}`,
    );
  };
  await new Promise((resolve) => setTimeout(resolve, 300));
  await newCode("edit", () => Promise.resolve());
  await newCode("reload", async () => {
    const reload = await runCli(["reload"], dir);
    if (reload.code !== 0) {
      const status = (await runCli(["status", "--json"], dir)).stdout;
      throw new Error(
        `reload failed: ${reload.stderr}\n${status}\n${run.output.text().slice(-6000)}`,
      );
    }
  });
  await newCode("SIGHUP", () => Promise.resolve(run.signal("SIGHUP")));
  await sameCode("crash", async () => {
    const { rows } = await workers(dir);
    Deno.kill(rows[0].pid, "SIGKILL");
    await waitFor(
      async () => !(await workers(dir)).rows.some((r) => r.pid === rows[0].pid),
      "gone",
    );
  });
  await sameCode("recycle", async () => {
    // --max-requests recycles workers throughout the run; this phase waits for one more.
    const recycles = () => run.output.matches(/\(--max-requests\): replacing it/).length;
    const before = recycles();
    await waitFor(() => recycles() > before, "a recycle");
  });
  await sameCode("scale-up", async () => {
    await runCli(["scale", String(WORKERS + 1)], dir);
  }, WORKERS + 1);
  await sameCode("scale-down", async () => {
    await runCli(["scale", String(WORKERS)], dir);
  });
  state.trigger = "after";
  await new Promise((resolve) => setTimeout(resolve, 300));
  await Promise.all(both.map((l) => l.stop()));
  result.keepAlive = keepAlive.byTrigger;
  result.fresh = fresh.byTrigger;
  result.steered = run.output.has("handover: steered (eBPF)");
  console.log(JSON.stringify(result));
} finally {
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
