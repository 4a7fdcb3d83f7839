/**
 * `deno task bench startup`: worker start-to-ready time and the supervisor's
 * idle footprint, next to `deno run --watch` as the anchor.
 */
import { encodeHandshake, FRAME_MARKER, type WorkerSettings } from "../src/runtime/protocol.ts";
import { npmProject } from "../tests/frameworks.ts";
import { runCli } from "../tests/helpers.ts";
import {
  cpuTicks,
  freePort,
  hotreloadArgs,
  machine,
  median,
  rssKiB,
  spawnQuiet,
  table,
  until,
} from "./lib.ts";

const APP = `Deno.serve(() => new Response("ok"));\n`;

async function project(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-" });
  await Deno.writeTextFile(`${dir}/main.ts`, APP);
  return dir;
}

function startHotreload(dir: string, workers: number, port: number, extra: string[] = []) {
  const child = new Deno.Command(Deno.execPath(), {
    args: hotreloadArgs(workers, port, extra),
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const done = (async () => {
    for await (const text of child.stderr.pipeThrough(new TextDecoderStream())) {
      lines.push(...text.split("\n"));
    }
  })();
  return { child, lines, done };
}

/** Start-to-ready of one worker, as the supervisor logs it, over `runs` separate starts. */
async function workerStartToReady(runs: number): Promise<number[]> {
  const times: number[] = [];
  const dir = await project();
  try {
    for (let i = 0; i < runs; i++) {
      const run = startHotreload(dir, 1, freePort(), ["--no-watch"]);
      const line = await until(() => run.lines.find((l) => /worker 0 ready/.test(l)), "ready");
      times.push(Number(line.match(/, (\d+) ms\)/)![1]));
      run.child.kill("SIGTERM");
      await run.child.status;
      await run.done;
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return times;
}

const RUNTIME = new URL("../src/runtime/", import.meta.url).pathname;

/**
 * A copy of the worker runtime whose node:net hook is a no-op, to measure
 * what the hook costs a `Deno.serve` worker (the only difference).
 */
async function runtimeWithoutNodeHook(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-runtime-" });
  for (const entry of Deno.readDirSync(RUNTIME)) {
    if (entry.isFile) await Deno.copyFile(`${RUNTIME}${entry.name}`, `${dir}/${entry.name}`);
  }
  await Deno.writeTextFile(
    `${dir}/node_servers.ts`,
    `export function watchNodeServers() {\n  return { count: () => 0, closeAll: () => Promise.resolve() };\n}\n`,
  );
  return `${dir}/`;
}

/**
 * One worker run directly with the preload in `runtime`, as the supervisor
 * starts it (handshake on stdin, frames on stderr): resolves once it is ready.
 */
async function startWorker(
  runtime: string,
  dir: string,
  entry: string,
  extra: Partial<WorkerSettings> = {},
) {
  const nonce = crypto.randomUUID().replaceAll("-", "");
  const settings: WorkerSettings = {
    id: 0,
    generation: 1,
    workers: 1,
    port: freePort(),
    orphanGraceMs: 1000,
    orphanServeMs: 0,
    closeWindowMs: 0,
    graceMs: 1000,
    hopKey: "0123456789abcdef0123456789abcdef",
    maxRequests: 0,
    ...extra,
  };
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--unstable-net", "--preload", `${runtime}worker_preload.ts`, "-A", entry],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  // This bench plays the supervisor: the child watches our pid.
  await writer.write(
    encodeHandshake({ nonce, supervisor: Deno.pid, sentAt: Date.now(), settings }),
  );
  let text = "";
  let readyMs: number | undefined;
  let onReady = () => {};
  const ready = new Promise<void>((resolve) => onReady = resolve);
  const marker = `${FRAME_MARKER}${nonce}:{"t":"ready"`;
  // Read stderr to the end, so the child never blocks on a full pipe.
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (readyMs === undefined && text.includes(marker)) {
        readyMs = performance.now() - started;
        onReady();
      }
    }
  })();
  await Promise.race([ready, child.status.then(() => reading)]);
  if (readyMs === undefined) throw new Error(`no ready frame:\n${text}`);
  return {
    pid: child.pid,
    readyMs,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await reading;
      await writer.close().catch(() => {});
    },
  };
}

async function preloadStartToReady(runtime: string, dir: string, entry: string): Promise<number> {
  const worker = await startWorker(runtime, dir, entry);
  await worker.stop();
  return worker.readyMs;
}

/** CPU % of one core an idle Deno.serve worker uses over `seconds`, with and without heartbeats. */
async function heartbeatCost(seconds: number) {
  const dir = await project();
  const result: Record<string, number> = {};
  try {
    for (const heartbeatMs of [0, 10_000, 0, 10_000]) {
      const worker = await startWorker(RUNTIME, dir, "main.ts", { heartbeatMs });
      await new Promise((resolve) => setTimeout(resolve, 1000)); // start-up work settles
      const { cpuPercent } = await idleFootprint(worker.pid, seconds);
      const key = heartbeatMs === 0 ? "off" : "on";
      result[key] = (result[key] ?? 0) + cpuPercent / 2;
      await worker.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return result;
}

/** Spawn-to-ready with and without the node:net hook, alternating, plus an Express worker. */
async function hookCost(rounds: number) {
  const without = await runtimeWithoutNodeHook();
  const dir = await npmProject({
    "main.ts": APP,
    "main.js": `import express from "express";\nconst app = express();\n` +
      `app.get("/", (req, res) => res.send("ok"));\napp.listen(process.env.PORT);\n`,
  });
  const times = { hooked: [] as number[], plain: [] as number[], express: [] as number[] };
  try {
    for (let i = 0; i < 3; i++) await preloadStartToReady(RUNTIME, dir, "main.js"); // warm the cache
    for (let i = 0; i < rounds; i++) {
      times.hooked.push(await preloadStartToReady(RUNTIME, dir, "main.ts"));
      times.plain.push(await preloadStartToReady(without, dir, "main.ts"));
      times.express.push(await preloadStartToReady(RUNTIME, dir, "main.js"));
    }
  } finally {
    await Deno.remove(without, { recursive: true });
    await Deno.remove(dir, { recursive: true });
  }
  return times;
}

/** All N workers ready, measured from the supervisor's spawn to its "ready" log line. */
async function allReady(workers: number): Promise<number> {
  const dir = await project();
  try {
    const run = startHotreload(dir, workers, freePort(), ["--no-watch"]);
    const line = await until(
      () => run.lines.find((l) => /worker\(s\) ready in/.test(l)),
      "all ready",
      120_000,
    );
    run.child.kill("SIGTERM");
    await run.child.status;
    await run.done;
    return Number(line.match(/ready in (\d+) ms/)![1]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** RSS and CPU % of a process over `seconds` of idling. */
async function idleFootprint(pid: number, seconds: number) {
  const before = cpuTicks(pid);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const cpuPercent = (cpuTicks(pid) - before) / ((performance.now() - started) / 1000);
  return { rssMiB: rssKiB(pid) / 1024, cpuPercent };
}

export async function benchStartup(): Promise<string> {
  const times = await workerStartToReady(10);
  const hook = await hookCost(30);
  const heartbeat = await heartbeatCost(10);
  const scale = [];
  for (const n of [1, 8, 32]) scale.push([n, await allReady(n)]);

  const dir = await project();
  const port = freePort();
  const hot = startHotreload(dir, 4, port);
  await until(() => hot.lines.find((l) => /worker\(s\) ready in/.test(l)), "4 workers ready");
  await new Promise((resolve) => setTimeout(resolve, 1000)); // let start-up work settle
  // Watching, 4 workers: 4 warm spares wait beside them; measure the supervisor and one spare.
  const spare = await until(async () => {
    const status = await runCli(["status", "--json"], dir);
    return JSON.parse(status.stdout).children.find((c: { state: string }) => c.state === "spare");
  }, "a spare");
  const [hotIdle, spareIdle] = await Promise.all([
    idleFootprint(hot.child.pid, 10),
    idleFootprint(spare.pid, 10),
  ]);
  hot.child.kill("SIGTERM");
  await hot.child.status;
  await hot.done;

  await Deno.writeTextFile(
    `${dir}/watch.ts`,
    `Deno.serve({ port: ${freePort()} }, () => new Response("ok"));\n`,
  );
  const watch = spawnQuiet(["run", "--watch", "-N", "watch.ts"], dir);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const watchIdle = await idleFootprint(watch.pid, 10);
  watch.kill("SIGTERM");
  await watch.status;
  await Deno.remove(dir, { recursive: true });

  const sorted = [...times].sort((a, b) => a - b);
  return [
    "### Start-up and supervisor footprint",
    "",
    machine(),
    "",
    `Worker start-to-ready (spawn to first listener bound, 1 worker, 10 starts): median ${
      median(times)
    } ms, ` +
    `min ${sorted[0]} ms, max ${sorted.at(-1)} ms.`,
    "",
    table(["workers", "start to all ready (ms)"], scale),
    "",
    "Spawn to ready of one worker started directly with the preload, 30 rounds alternating " +
    "(median, min–max):",
    "",
    table(["app", "worker runtime", "median ms", "min–max ms"], [
      ["Deno.serve", "with the node:net hook", ...spread(hook.hooked)],
      ["Deno.serve", "without it (hook replaced by a no-op)", ...spread(hook.plain)],
      ["Express 5 (node:http)", "with the node:net hook", ...spread(hook.express)],
    ]),
    "",
    `The hook costs a Deno.serve worker ${
      (median(hook.hooked) - median(hook.plain)).toFixed(1)
    } ms at the median.`,
    "",
    `An idle Deno.serve worker, 2 × 10 s each: ${heartbeat.off.toFixed(2)} % of one core without ` +
    `heartbeats, ${heartbeat.on.toFixed(2)} % with the default (every 10 s, --timeout 30000); ` +
    "/proc counts CPU in 10 ms ticks, so 0.10 % is one tick in 10 s.",
    "",
    table(["process (idle 10 s)", "RSS MiB", "CPU % of one core"], [
      [
        "hotreload supervisor, 4 workers, watching (events)",
        hotIdle.rssMiB.toFixed(1),
        hotIdle.cpuPercent.toFixed(2),
      ],
      [
        "one warm spare (hotreload keeps one per worker while watching)",
        spareIdle.rssMiB.toFixed(1),
        spareIdle.cpuPercent.toFixed(2),
      ],
      [
        "deno run --watch (its own process, app included)",
        watchIdle.rssMiB.toFixed(1),
        watchIdle.cpuPercent.toFixed(2),
      ],
      ["ratio hotreload / deno run --watch", (hotIdle.rssMiB / watchIdle.rssMiB).toFixed(2), "-"],
    ]),
  ].join("\n");
}

function spread(values: number[]): [string, string] {
  const sorted = [...values].sort((a, b) => a - b);
  return [median(values).toFixed(1), `${sorted[0].toFixed(1)}–${sorted.at(-1)!.toFixed(1)}`];
}

if (import.meta.main) console.log(await benchStartup());
