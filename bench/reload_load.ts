/**
 * `deno task bench reload-load`: requests/s, p99 latency and errors as wrk
 * sees them *while* a server reloads, next to the same servers in steady
 * state, side by side in one run.
 *
 * wrk -t2 -c50 -d12s (keep-alive clients, not pinned: wrk and the servers
 * share both cores) against a hello app; during reload runs 4 reloads come
 * 2 s apart (at 2, 4, 6 and 8 s). Subjects: `deno run --watch` and `deno
 * serve --parallel --watch` (4 jobs), reloaded by editing the entry;
 * hotreload with 4 workers and its watching defaults (warm spares, one-step
 * switch), steered (root's default) and `--handover none`, reloaded by
 * edits, with the hello app (its handler declares no parameters: Deno's
 * fast path, and a worker out of service answers with `Connection: close`)
 * and with the same app reading its request (a worker out of service sends
 * each request on to new code, src/runtime/forward.ts); hotreload with 2 workers, not watching (a rolling reload), reloaded
 * by `hotreload reload` (the entry is rewritten first, so the new code is
 * new), steered and `--handover none`. Every subject also runs without
 * reloads (steady). Each is started fresh for each run (after a 2 s warm-up
 * of wrk); the runs are interleaved, their order rotating.
 *
 * Reported per run: requests/s, p99, wrk's socket errors (connect, read,
 * write, timeout) and non-2xx answers; for reload runs, how many reloads the
 * server's log shows (hotreload: completed, and superseded by the next),
 * and whether the last version was served at the end.
 */
import {
  BenchServer,
  freePort,
  hotreloadArgs,
  machine,
  median,
  table,
  until,
  untilQuiet,
  wrk,
  type WrkResult,
} from "./lib.ts";
import { CLI } from "../tests/helpers.ts";

const RUNS = 2;
const SECONDS = 12;
const THREADS = 2;
const CONNECTIONS = 50;
const RELOADS = 4;
const FIRST_RELOAD_MS = 2000;
const RELOAD_EVERY_MS = 2000;

interface Subject {
  label: string;
  /** How it reloads: its file is edited (it watches), or `hotreload reload` is run. */
  via: "edit" | "command";
  args: (port: number) => string[];
  env?: Record<string, string>;
  source: (port: number, version: number) => string;
  /** Lines of its log that say a reload happened, and (hotreload) one was superseded. */
  done: RegExp;
  superseded?: RegExp;
  /** What its log must say at start (hotreload's mode, checked), and that all are ready. */
  expect?: RegExp[];
  ready?: RegExp;
}

const portSource = (port: number, version: number) =>
  `Deno.serve({ port: ${port} }, () => new Response("v${version}"));\n`;
/** The same app reading its request: hotreload then sends requests on while out of service. */
const readingSource = (port: number, version: number) =>
  `Deno.serve({ port: ${port} }, (request) => new Response(request.method === "GET" ? "v${version}" : "?"));\n`;
const serveSource = (_port: number, version: number) =>
  `export default { fetch: () => new Response("v${version}") };\n`;

const HOTRELOAD_DONE = /reloaded \d+ workers? in \d+ ms/g;
const HOTRELOAD_SUPERSEDED = /ready in \d+ ms, when a newer change took over/g;
const STEERED = /handover: steered \(eBPF\)/;
const NOT_STEERED = /warning: handover: none/;

const SUBJECTS: Subject[] = [
  {
    label: "deno run --watch",
    via: "edit",
    args: () => ["run", "--watch", "-N", "main.ts"],
    source: portSource,
    done: /Watcher Restarting! File change detected/g,
  },
  {
    label: "deno serve --parallel --watch, DENO_JOBS=4",
    via: "edit",
    args: (port) => ["serve", "--parallel", "--watch", "-N", "--port", String(port), "main.ts"],
    env: { DENO_JOBS: "4" },
    source: serveSource,
    done: /Watcher Restarting! File change detected/g,
  },
  ...([
    ["steered", [], portSource, ""],
    ["--handover none", ["--handover", "none"], portSource, ""],
    ["steered", [], readingSource, ", an app reading its request"],
    ["--handover none", ["--handover", "none"], readingSource, ", an app reading its request"],
  ] as const).map((
    [mode, extra, source, app],
  ): Subject => ({
    label: `hotreload, 4 workers, watching defaults, ${mode}${app}`,
    via: "edit",
    args: (port) => hotreloadArgs(4, port, [...extra]),
    source,
    done: HOTRELOAD_DONE,
    superseded: HOTRELOAD_SUPERSEDED,
    expect: [/watching with file events/, mode === "steered" ? STEERED : NOT_STEERED],
    ready: /4 worker\(s\) ready/,
  })),
  ...([["steered", []], ["--handover none", ["--handover", "none"]]] as const).map((
    [mode, extra],
  ): Subject => ({
    label: `hotreload, 2 workers, --no-watch, \`hotreload reload\`, ${mode}`,
    via: "command",
    args: (port) => hotreloadArgs(2, port, ["--no-watch", ...extra]),
    source: portSource,
    done: HOTRELOAD_DONE,
    superseded: HOTRELOAD_SUPERSEDED,
    expect: [/not watching/, mode === "steered" ? STEERED : NOT_STEERED],
    ready: /2 worker\(s\) ready/,
  })),
];

/** One run's outcome. */
interface Run extends WrkResult {
  reloads: boolean;
  /** Reloads the server's log shows done, and (hotreload) superseded by the next. */
  done: number;
  superseded: number;
  /** `hotreload reload`'s exit codes, in order. */
  commands: number[];
  /** The body served after the run: the last version, when every reload took. */
  lastServed: string;
  quiet: boolean;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `hotreload reload` in `dir`; its exit code. */
async function reloadCommand(dir: string): Promise<number> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "reload"],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return output.code;
}

async function measure(subject: Subject, reloads: boolean): Promise<Run> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-reload-load-" });
  await Deno.writeTextFile(`${dir}/main.ts`, subject.source(port, 0));
  const server = new BenchServer(subject.args(port), { cwd: dir, env: subject.env });
  const url = `http://127.0.0.1:${port}/`;
  try {
    await server.answers(url, 60_000);
    if (subject.ready) {
      await until(() => subject.ready!.test(server.text()), `${subject.label}: all ready`);
    }
    for (const pattern of subject.expect ?? []) {
      if (!pattern.test(server.text())) {
        throw new Error(`${subject.label}: its log does not say ${pattern}:\n${server.text()}`);
      }
    }
    await sleep(500);
    await wrk(port, { connections: CONNECTIONS, seconds: 2, threads: THREADS, pinned: false });
    const quiet = await untilQuiet({ timeoutMs: 900_000 });
    const logBefore = server.text().length;
    const load = wrk(port, {
      connections: CONNECTIONS,
      seconds: SECONDS,
      threads: THREADS,
      pinned: false,
    });
    const commands: Promise<number>[] = [];
    if (reloads) {
      const started = performance.now();
      for (let version = 1; version <= RELOADS; version++) {
        const at = FIRST_RELOAD_MS + (version - 1) * RELOAD_EVERY_MS;
        await sleep(Math.max(0, at - (performance.now() - started)));
        await Deno.writeTextFile(`${dir}/main.ts`, subject.source(port, version));
        if (subject.via === "command") commands.push(reloadCommand(dir));
      }
    }
    const result = await load;
    const codes = await Promise.all(commands);
    // Whatever reload is still under way settles before the last answer is read.
    await sleep(reloads ? 3000 : 0);
    const response = await fetch(url);
    const lastServed = await response.text();
    const log = server.text().slice(logBefore);
    const run: Run = {
      ...result,
      reloads,
      done: log.match(subject.done)?.length ?? 0,
      superseded: subject.superseded ? log.match(subject.superseded)?.length ?? 0 : 0,
      commands: codes,
      lastServed,
      quiet,
    };
    const e = run.errors;
    console.error(
      `${subject.label}, ${reloads ? "reloads" : "steady"}: ${Math.round(run.rps)} req/s, p99 ` +
        `${run.p99ms.toFixed(2)} ms, errors c${e.connect}/r${e.read}/w${e.write}/t${e.timeout}, ` +
        `non-2xx ${e.non2xx}; reloads done ${run.done}, superseded ${run.superseded}; ` +
        `commands ${codes.join(",") || "-"}; last answer ${lastServed}${quiet ? "" : " (busy)"}`,
    );
    return run;
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

export async function benchReloadLoad(
  { runs = RUNS, only }: { runs?: number; only?: RegExp } = {},
): Promise<string> {
  const subjects = SUBJECTS.filter((subject) => only === undefined || only.test(subject.label));
  const cases = subjects.flatMap((subject) =>
    [true, false].map((reloads) => ({ subject, reloads }))
  );
  const results = new Map<string, Run[]>();
  const key = (label: string, reloads: boolean) => `${label}|${reloads}`;
  for (let round = 0; round < runs; round++) {
    const shift = Math.ceil(cases.length / runs) * round;
    const order = [...cases.slice(shift), ...cases.slice(0, shift)];
    for (const { subject, reloads } of order) {
      const list = results.get(key(subject.label, reloads)) ?? [];
      list.push(await measure(subject, reloads));
      results.set(key(subject.label, reloads), list);
    }
  }
  const each = (list: Run[], show: (run: Run) => string | number) => list.map(show).join(", ");
  const rows = subjects.flatMap((subject) =>
    [true, false].map((reloads) => {
      const list = results.get(key(subject.label, reloads))!;
      const steady = results.get(key(subject.label, false))!;
      return [
        subject.label,
        reloads ? `${RELOADS} reloads (${subject.via === "edit" ? "edits" : "command"})` : "steady",
        each(list, (run) => Math.round(run.rps)),
        reloads
          ? (median(list.map((r) => r.rps)) / median(steady.map((r) => r.rps))).toFixed(2)
          : "-",
        each(list, (run) => run.p99ms.toFixed(2)),
        each(list, (run) =>
          `${run.errors.connect}/${run.errors.read}/${run.errors.write}/${run.errors.timeout}`),
        each(list, (run) =>
          run.errors.non2xx),
        reloads
          ? each(list, (run) =>
            `${run.done}${subject.superseded ? ` + ${run.superseded} superseded` : ""}` +
            (run.commands.length > 0 ? ` (exit ${[...new Set(run.commands)].join("/")})` : ""))
          : "-",
        reloads
          ? each(list, (run) =>
            run.lastServed === `v${RELOADS}` ? "yes" : run.lastServed)
          : "-",
      ];
    })
  );
  const busy = [...results.values()].flat().filter((run) => !run.quiet).length;
  return [
    "## Latency and errors while reloading",
    "",
    machine(),
    "",
    `wrk -t${THREADS} -c${CONNECTIONS} -d${SECONDS}s (keep-alive, not pinned) against a hello app; ` +
    `reload runs: ${RELOADS} reloads ${RELOAD_EVERY_MS / 1000} s apart from ` +
    `${FIRST_RELOAD_MS / 1000} s on; steady runs: none. ${runs} runs of each, interleaved, ` +
    "each value below is one run. Errors are wrk's socket errors " +
    '(connect/read/write/timeout); "reloads seen" counts the server\'s log lines that say a ' +
    "reload finished (hotreload: its workers replaced; a reload a newer one took over from counts " +
    'as superseded), and "last version served" whether the final code answered after the run. ' +
    `The host's net.ipv4.tcp_migrate_req is ${migrateReq()}.` +
    (busy > 0 ? ` ${busy} runs started while other work kept the machine busy.` : ""),
    "",
    table([
      "server",
      "run",
      "requests/s",
      "÷ steady (medians)",
      "p99 ms",
      "socket errors",
      "non-2xx",
      "reloads seen",
      "last version served",
    ], rows),
  ].join("\n");
}

function migrateReq(): string {
  try {
    return Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_migrate_req").trim();
  } catch {
    return "unknown";
  }
}

if (import.meta.main) {
  // `deno run -A bench/reload_load.ts [runs] [regexp]`: a quicker look at some rows.
  const runs = Deno.args[0] === undefined ? RUNS : Number(Deno.args[0]);
  const only = Deno.args[1] === undefined ? undefined : new RegExp(Deno.args[1]);
  console.log(await benchReloadLoad({ runs, only }));
}
