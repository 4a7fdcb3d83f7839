/**
 * `deno task bench throughput`: requests/s and p99 latency of a hello app
 * under wrk, hotreload with 1, 2 and 4 workers next to a single `deno run`
 * process and `deno serve --parallel` with the same worker count. Nothing of
 * hotreload sits in the request path, so the ratio to `deno serve --parallel`
 * should be about 1. wrk runs on the same 2-core machine (1 thread), pinned
 * to one core and the servers to the other.
 */
import {
  freePort,
  hotreloadArgs,
  LOAD_CPU,
  machine,
  median,
  type Sample,
  SERVER_CPUS,
  table,
  until,
  wrk,
} from "./lib.ts";

const SECONDS = 5;
const CONNECTIONS = 64;
const ROUNDS = 9;

async function project(port: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-" });
  await Deno.writeTextFile(
    `${dir}/main.ts`,
    `Deno.serve({ port: ${port} }, () => new Response("hello"));\n`,
  );
  await Deno.writeTextFile(
    `${dir}/serve.ts`,
    `export default { fetch: () => new Response("hello") };\n`,
  );
  return dir;
}

function server(kind: string, workers: number, dir: string, port: number): Deno.ChildProcess {
  const args = kind === "hotreload"
    ? hotreloadArgs(workers, port, ["--no-watch"])
    : kind === "deno serve --parallel"
    ? ["serve", "--parallel", "-N", "--port", String(port), "serve.ts"]
    : ["run", "-N", "main.ts"];
  return new Deno.Command("taskset", {
    args: ["-c", SERVER_CPUS, Deno.execPath(), ...args],
    cwd: dir,
    env: { DENO_JOBS: String(workers), NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

async function measure(kind: string, workers: number): Promise<Sample> {
  const port = freePort();
  const dir = await project(port);
  const child = server(kind, workers, dir, port);
  try {
    await until(async () => (await fetch(`http://127.0.0.1:${port}/`)).ok, `${kind} to answer`);
    await new Promise((resolve) => setTimeout(resolve, 500)); // let every worker bind
    await wrk(port, { connections: CONNECTIONS, seconds: 2 }); // warm-up
    return await wrk(port, { connections: CONNECTIONS, seconds: SECONDS });
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

export async function benchThroughput(): Promise<string> {
  const runs: [string, number][] = [
    ["deno run (single process)", 1],
    ["hotreload", 1],
    ["deno serve --parallel", 1],
    ["hotreload", 2],
    ["deno serve --parallel", 2],
    ["hotreload", 4],
    ["deno serve --parallel", 4],
  ];
  const samples = new Map<string, Sample[]>();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [kind, workers] of runs) {
      const key = `${kind}|${workers}`;
      const list = samples.get(key) ?? [];
      list.push(await measure(kind === "deno run (single process)" ? "deno run" : kind, workers));
      samples.set(key, list);
    }
  }
  const summary = (key: string) => {
    const list = samples.get(key)!;
    return { rps: median(list.map((s) => s.rps)), p99: median(list.map((s) => s.p99ms)), list };
  };
  const rows = runs.map(([kind, workers]) => {
    const own = summary(`${kind}|${workers}`);
    const anchor = summary(`deno serve --parallel|${workers}`);
    return [
      kind,
      workers,
      Math.round(own.rps),
      own.list.map((s) => Math.round(s.rps)).join(", "),
      own.p99.toFixed(2),
      kind === "hotreload" ? (own.rps / anchor.rps).toFixed(3) : "-",
    ];
  });
  return [
    `### Throughput of a hello app (wrk -t1 -c${CONNECTIONS}, ${SECONDS} s, median of ${ROUNDS} rounds)`,
    "",
    machine(),
    "",
    `wrk runs pinned to CPU ${LOAD_CPU} and the servers to CPU ${SERVER_CPUS}, so every row serves`,
    "from one core: more workers add processes (or threads), not CPU; compare rows with equal workers.",
    "",
    table([
      "server",
      "workers",
      "requests/s",
      "per round",
      "p99 ms",
      "ratio to deno serve --parallel",
    ], rows),
  ].join("\n");
}

if (import.meta.main) console.log(await benchThroughput());
