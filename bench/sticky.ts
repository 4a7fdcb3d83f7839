/**
 * `deno task bench sticky`: what `--sticky` costs. wrk (1 thread, 64
 * connections, 5 s, pinned to one core; the servers to the other) against
 * hotreload steered with and without `--sticky`, 1 and 4 workers, keep-alive
 * and a new connection per request (the program runs once per new
 * connection), side by side in each of two rounds; sticky ÷ plain per row.
 * Needs root (steering).
 */
import { freePort, hotreloadArgs, machine, median, SERVER_CPUS, table, until, wrk } from "./lib.ts";

const ROUNDS = 3;
const CONNECTIONS = 64;
const SECONDS = 5;

interface Case {
  workers: number;
  fresh: boolean;
}

const CASES: Case[] = [1, 4].flatMap((workers) =>
  [false, true].map((fresh) => ({ workers, fresh }))
);

async function measure({ workers, fresh }: Case, sticky: boolean): Promise<number> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "hotreload-sticky-" });
  await Deno.writeTextFile(`${dir}/main.ts`, `Deno.serve(() => new Response("hi"));\n`);
  const extra = ["--no-watch", "--handover", "ebpf", ...(sticky ? ["--sticky"] : [])];
  const child = new Deno.Command("taskset", {
    args: ["-c", SERVER_CPUS, Deno.execPath(), ...hotreloadArgs(workers, port, extra)],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await until(async () => (await fetch(`http://127.0.0.1:${port}/`)).ok, "hotreload to answer");
    await new Promise((resolve) => setTimeout(resolve, 500)); // every worker bound and steered
    const headers = fresh ? ["Connection: close"] : [];
    await wrk(port, { connections: CONNECTIONS, seconds: 2, headers }); // warm-up
    return (await wrk(port, { connections: CONNECTIONS, seconds: SECONDS, headers })).rps;
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs the rounds; returns the markdown section. */
export async function benchSticky(): Promise<string> {
  const plain = CASES.map(() => [] as number[]);
  const sticky = CASES.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, c] of CASES.entries()) {
      // Which goes first alternates, so a drift of the machine's speed does not favour one.
      if (round % 2 === 0) plain[i].push(await measure(c, false));
      sticky[i].push(await measure(c, true));
      if (round % 2 === 1) plain[i].push(await measure(c, false));
    }
  }
  const rounds = (list: number[]) => list.map((rps) => Math.round(rps)).join(", ");
  const rows = CASES.map((c, i) => [
    `${c.workers} worker${c.workers > 1 ? "s" : ""}`,
    c.fresh ? "new connection per request" : "keep-alive",
    rounds(plain[i]),
    rounds(sticky[i]),
    plain[i].map((rps, round) => (sticky[i][round] / rps).toFixed(2)).join(", "),
    (median(sticky[i]) / median(plain[i])).toFixed(2),
  ]);
  return [
    "## Sticky steering",
    "",
    machine(),
    "",
    `wrk -t1 -c${CONNECTIONS}, ${SECONDS} s, pinned to CPU 0 (the servers to CPU ${SERVER_CPUS}), ` +
    `against hotreload steered (\`--handover ebpf\`) with and without \`--sticky\`, side by side ` +
    `in each of ${ROUNDS} rounds (after a 2 s warm-up each; which goes first alternates); ` +
    `requests/s per round. wrk's connections all come from one ` +
    "address, so with 4 workers `--sticky` sends them all to one worker (that is its point): the " +
    "4-worker rows compare one worker with four sharing the servers' core, not the program's cost; " +
    "the 1-worker rows show the program's cost, which runs once per new connection.",
    "",
    table(
      [
        "workers",
        "client",
        "steered, req/s",
        "steered + sticky, req/s",
        "sticky ÷ plain",
        "median ratio",
      ],
      rows,
    ),
  ].join("\n");
}
