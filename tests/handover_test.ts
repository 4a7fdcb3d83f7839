/**
 * Handover (src/handover/): eBPF steering against the real kernel, with real
 * workers and real clients that open a new connection per request, in a
 * network namespace where tcp_migrate_req is 0 (so only steering can save
 * the connections a closing listener had queued). Needs root, as CI has.
 */
import assert from "node:assert/strict";
import { runInNetns, runScenario } from "./netns.ts";
import {
  freePort,
  httpGet,
  makeProject,
  MOD_URL,
  runCli,
  serveArgs,
  waitFor,
  withHotreload,
} from "./helpers.ts";
import { listeningInodes } from "../src/supervisor/port_owners.ts";

const ROOT = Deno.uid() === 0;
const PID_APP = `Deno.serve((req) => {
  if (new URL(req.url).pathname !== "/healthz") return new Response(String(Deno.pid));
  let healthy = true;
  try { Deno.statSync("healthy"); } catch { healthy = false; }
  return new Response(healthy ? "ok" : "not yet", { status: healthy ? 200 : 503 });
});
`;

interface Counts {
  ok: number;
  failures: string[];
}

Deno.test({
  name:
    "steered: 10 reloads under new-connection-per-request load fail 0 requests (tcp_migrate_req=0)",
  ignore: !ROOT,
  async fn() {
    const result = await runScenario<Counts & { reloads: number; steered: boolean }>(
      "under_load",
      { scenario: "steered-reloads" },
      0,
    );
    assert.equal(result.steered, true, "the start line says steered (eBPF)");
    assert.equal(result.reloads, 10);
    assert.deepEqual(result.failures, []);
    assert.ok(result.ok > 100, `requests served: ${result.ok}`);
  },
});

Deno.test({
  name: "steered: scaling up and down under new-connection-per-request load fails 0 requests",
  ignore: !ROOT,
  async fn() {
    const result = await runScenario<Counts & { steps: string[]; steered: boolean }>(
      "under_load",
      { scenario: "steered-scale" },
      0,
    );
    assert.equal(result.steered, true, "the start line says steered (eBPF)");
    assert.deepEqual(result.steps, ["3→3", "1→1", "SIGTTIN→2", "SIGTTOU→1"]);
    assert.deepEqual(result.failures, []);
    assert.ok(result.ok > 0);
  },
});

Deno.test({
  name: "steered: a crashed worker leaves the map with its socket; its replacement is steered in",
  ignore: !ROOT,
  async fn() {
    const result = await runScenario<
      Counts & {
        afterRestart: { failures: string[]; pids: number[] };
        workers: number[];
        steered: boolean;
      }
    >("under_load", { scenario: "steered-crash" }, 0);
    assert.equal(result.steered, true, "the start line says steered (eBPF)");
    // During the crash, only requests the killed worker itself held can fail.
    assert.ok(result.failures.length <= 8, `failures at the crash: ${result.failures.length}`);
    assert.deepEqual(result.afterRestart.failures, []);
    // Every ready worker, the replacement included, gets new connections.
    assert.deepEqual(result.afterRestart.pids.toSorted(), result.workers.toSorted());
  },
});

Deno.test({
  name: "steered: a new worker gets no connection until its --ready-path passes",
  ignore: !ROOT,
  async fn() {
    await withHotreload(
      { "main.ts": PID_APP, "healthy": "" },
      (port) =>
        serveArgs(
          port,
          "-w",
          "2",
          "--allow-read",
          "--ready-path",
          "/healthz",
          "--ready-timeout",
          "30000",
          "--handover",
          "ebpf",
        ),
      async (run, { dir, port }) => {
        await run.waitForReady(2);
        await run.waitForOutput("handover: steered (eBPF)");
        const old = new Set(await readyPids(dir));
        await Deno.remove(`${dir}/healthy`);
        run.signal("SIGHUP");
        // The canary listens, but answers 503 on /healthz: it is not ready.
        let canary = 0;
        await waitFor(async () => {
          const status = await statusJson(dir);
          canary = status.children.find((c) => c.state === "starting")?.pid ?? 0;
          return canary > 0 && status.supervisor.boundPorts.includes(port) &&
            await listens(canary, port);
        }, "the canary to listen");
        const answered = new Set<number>();
        for (let i = 0; i < 60; i++) answered.add(Number(await fresh(port)));
        assert.ok(!answered.has(canary), "the not-ready canary answered a request");
        assert.ok([...answered].every((pid) => old.has(pid)), "only old workers answer");
        await Deno.writeTextFile(`${dir}/healthy`, "");
        await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2/);
        const now = new Set<number>();
        await waitFor(async () => {
          now.add(Number(await fresh(port)));
          return now.has(canary);
        }, "the canary to answer once ready");
      },
    );
  },
});

Deno.test({
  name: "steered: stop ends every worker and exits 0",
  ignore: !ROOT,
  async fn() {
    await withHotreload(
      { "main.ts": PID_APP },
      (port) => serveArgs(port, "-w", "2", "--handover", "ebpf"),
      async (run, { dir, port }) => {
        await run.waitForReady(2);
        assert.ok(Number(await fresh(port)) > 0);
        const stop = await runCli(["stop"], dir);
        assert.equal(stop.code, 0, stop.stderr);
        assert.equal((await run.status).code, 0);
      },
    );
  },
});

Deno.test({
  name: "steered: workers with no listener on the port are said once, and left to the kernel",
  ignore: !ROOT,
  async fn() {
    const app = `import { deferReady, ready } from "${MOD_URL}";
deferReady();
ready();
setInterval(() => {}, 1000);
`;
    await withHotreload(
      { "main.ts": app },
      (port) => serveArgs(port, "-w", "2", "--handover", "ebpf"),
      async (run, { port }) => {
        await run.waitForReady(2);
        run.signal("SIGHUP");
        await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2/);
        const said = run.output.matches(
          new RegExp(
            `not steering new connections \\(no listener on port ${port} in worker pid \\d+\\)`,
          ),
        );
        assert.equal(said.length, 1, run.output.text());
      },
    );
  },
});

Deno.test({
  name: "--handover kernel with tcp_migrate_req=0 is a one-line start-up error",
  ignore: !ROOT,
  async fn() {
    const result = await runInNetns<{ code: number; stderr: string; stdout: string }>(
      new URL("./scenarios/start_only.ts", import.meta.url).pathname,
      ["--handover", "kernel"],
      { migrate: 0, timeoutMs: 60_000 },
    );
    assert.equal(result.code, 1);
    assert.match(result.stderr, /--handover kernel needs net\.ipv4\.tcp_migrate_req=1 \(it is 0\)/);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  },
});

Deno.test({
  name: "--handover ebpf without CAP_BPF is a one-line start-up error; auto falls back",
  ignore: !ROOT,
  async fn() {
    const dir = await makeProject({ "main.ts": PID_APP });
    try {
      // Root without CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN (as in a default Docker container).
      const prefix = ["setpriv", "--bounding-set", "-bpf,-net_admin,-sys_admin,-perfmon", "--"];
      const forced = await runCli(["run", "main.ts", "-N", "--handover", "ebpf"], dir, {}, prefix);
      assert.equal(forced.code, 1, forced.stderr);
      assert.match(forced.stderr, /--handover ebpf cannot work here: bpf\(.*\): EPERM/);
      assert.equal(forced.stderr.trim().split("\n").length, 1, forced.stderr);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    await withHotreload(
      { "main.ts": PID_APP },
      (port) => serveArgs(port, "--handover", "auto"),
      async (run, { port }) => {
        await run.waitForReady(1);
        await run.waitForOutput(/handover: (kernel migration|none)/);
        assert.ok(Number(await fresh(port)) > 0, "it serves");
      },
      { prefix: ["setpriv", "--bounding-set", "-bpf,-net_admin,-sys_admin,-perfmon", "--"] },
    );
  },
});

/**
 * A worker told to leave while its entry still starts (a scale down, a
 * superseded reload) may open a listener only later, or report one only
 * after the supervisor released its others (CI saw a request fail so in the
 * promise matrix, --handover kernel): without steering the kernel gives such
 * a listener new connections until the close window ends, and the shutdown
 * then closes those whose request was not read yet. Here worker 1 serves
 * --port at once, then opens one more listener once told to leave (on
 * another port, or on --port again): it must stop as soon as it exists,
 * while the worker still drains.
 */
for (
  const [kind, listen, onPort] of [
    [
      "Deno.serve",
      `Deno.serve({ port: LATE, onListen: listened }, () => new Response("late"));`,
      false,
    ],
    // --port again: a port the worker reported (and the supervisor released) before.
    [
      "second Deno.serve on --port",
      `Deno.serve({ onListen: listened }, () => new Response("late"));`,
      true,
    ],
    [
      "node:http",
      `(await import("node:http")).createServer((_req, res) => res.end("late"))` +
      `.listen(LATE, listened);`,
      false,
    ],
    ["Deno.listen", `Deno.listen({ port: LATE }); listened();`, false],
  ] as const
) {
  Deno.test(`--handover none: a worker told to leave stops a ${kind} listener it opens afterwards`, async () => {
    const other = freePort();
    const app = `import { deferReady, drainSignal, workerInfo } from "${MOD_URL}";
const LATE = ${other};
// Worker 1 never says it is ready: it still starts when it is told to leave.
if (workerInfo().id === 1) deferReady();
Deno.serve(() => new Response(String(Deno.pid)));
function listened() {
  Deno.writeTextFileSync("late-listened", "");
}
if (workerInfo().id === 1) {
  await new Promise((resolve) => drainSignal().addEventListener("abort", resolve));
  ${listen}
}
`;
    await withHotreload(
      { "main.ts": app },
      (port) =>
        serveArgs(
          port,
          "--allow-write",
          "--handover",
          "none",
          "--close-window",
          "30000",
          "--grace",
          "60000",
          "--ready-timeout",
          "60000",
        ),
      async (run, { dir, port }) => {
        await run.waitForReady(1);
        // `scale 2` waits for worker 1 to be ready; `scale 1` takes it away while it starts.
        const scaling = runCli(["scale", "2"], dir);
        const leaving = await waitFor(async () => {
          const status = await statusJson(dir);
          const child = status.children.find((c) =>
            c.role === "worker" && c.id === 1 && c.state === "starting"
          );
          return child && await listens(child.pid, port) ? child.pid : undefined;
        }, "worker 1 to listen on --port");
        assert.equal((await runCli(["scale", "1"], dir)).code, 0);
        const superseded = await scaling;
        assert.equal(superseded.code, 1, "the first scale's target is gone: it stops waiting");
        assert.match(superseded.stderr, /the instance was scaled to 1 worker\(s\) meanwhile/);
        await waitFor(() => Deno.stat(`${dir}/late-listened`).then(() => true), "its late listen");
        const late = onPort ? port : other;
        await waitFor(async () => !(await listens(leaving, late)), "its late listener to stop");
        assert.ok(
          alive(leaving),
          "it still drains (a 30 s close window): the listener was stopped",
        );
        assert.ok(!(await listens(leaving, port)), "its --port listener was stopped too");
        assert.ok(Number(await fresh(port)) > 0, "the serving worker answers");
        // A stop cuts the reload's close window short (the deadline is half of its 30 s).
        const stopping = runCli(["stop"], dir);
        await waitFor(() => !alive(leaving), "the stop to end its close window early");
        assert.equal((await stopping).code, 0);
      },
    );
  });
}

/** True while `pid` runs (not yet reaped, nor a zombie). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

Deno.test("--handover refuses a value it does not know", async () => {
  const dir = await makeProject({ "main.ts": PID_APP });
  try {
    const result = await runCli(["run", "main.ts", "--handover", "magic"], dir);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--handover/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

interface Status {
  supervisor: { boundPorts: number[]; handover: string | null };
  children: { pid: number; id?: number; state: string; role: string }[];
}

async function statusJson(dir: string): Promise<Status> {
  const result = await runCli(["status", "--json"], dir);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

async function readyPids(dir: string): Promise<number[]> {
  return (await statusJson(dir)).children.filter((c) => c.role === "worker" && c.state === "ready")
    .map((c) => c.pid);
}

/** One request on a new connection (Connection: close); the body. */
async function fresh(port: number): Promise<string> {
  return (await httpGet(port)).body;
}

/** True when `pid` holds a listening socket on `port` (its inode among the port's LISTEN rows). */
async function listens(pid: number, port: number): Promise<boolean> {
  const inodes = listeningInodes(port);
  for await (const entry of Deno.readDir(`/proc/${pid}/fd`)) {
    const link = await Deno.readLink(`/proc/${pid}/fd/${entry.name}`).catch(() => "");
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match && inodes.has(match[1])) return true;
  }
  return false;
}
