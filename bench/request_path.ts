/**
 * `deno run -A bench/request_path.ts [rounds]`: what each piece of a
 * hotreload worker's handler wrapper costs, measured on plain `deno run`
 * (no hotreload at all), so that nothing else differs.
 *
 * Deno's server has a fast path for a handler that declares no parameters
 * (`() => new Response(...)`, as the throughput bench's hello app): it then
 * builds no Request, no ServeHandlerInfo (`handler.length === 0`, Deno's
 * ext/http/00_serve.ts). hotreload's wrapper (src/runtime/serve_handler.ts,
 * `poolHandler`) keeps that fast path for such a handler; for one that reads
 * its request it declares two parameters, reads `request.url` (the hop check: two ops
 * and a string per request) and `info.completed` (a promise Deno creates
 * only when asked, settled when the response is sent) for its count of open
 * requests. Each variant below adds one of these to the same hello app:
 *
 * - `() => app()`: the app as written (Deno's fast path);
 * - `(request, info) => app()`: two parameters, nothing read;
 * - `+ request.url`: the hop check;
 * - `+ info.completed`: the open-request count;
 * - `the wrapper`: all of it, as poolHandler does in service;
 * - `(request) => app reading request.url`: an app that routes on its URL,
 *   as most do, and the same app inside the wrapper (Deno keeps the URL it
 *   made, so the hop check then costs one `indexOf`).
 *
 * wrk -t1 -c64 pinned to CPU 0, the server to CPU 1, 5 s after a 2 s
 * warm-up, keep-alive and a new connection per request; rounds interleaved
 * with the order rotating; a measurement other work disturbed is taken
 * again. Prints a markdown table: requests/s, and the server's CPU time per
 * request (which shows a cost even when wrk is the bottleneck).
 */
import {
  BenchServer,
  cpuWindow,
  freePort,
  machine,
  median,
  SERVER_CPUS,
  table,
  untilQuiet,
  wrk,
} from "./lib.ts";

const MARKER = "/~hotreload-hop/0123456789abcdef0123456789abcdef/";
const PRELUDE = `const app = () => new Response("hello");
const routed = (request) => new Response(request.url.endsWith("/") ? "hello" : "other");
const port = Number(Deno.env.get("PORT"));
let open = 0, served = 0;
const done = () => { open--; };
`;

const VARIANTS: { label: string; serve: string }[] = [
  { label: "() => app() (the app as written)", serve: `Deno.serve({ port }, () => app());` },
  {
    label: "(request, info) => app()",
    serve: `Deno.serve({ port }, (request, info) => app());`,
  },
  {
    label: "+ request.url (hop check)",
    serve: `Deno.serve({ port }, (request, info) => {
  if (request.url.indexOf("${MARKER}") < 0) return app();
  return new Response("hop");
});`,
  },
  {
    label: "+ info.completed (open count)",
    serve: `Deno.serve({ port }, (request, info) => {
  open++;
  info.completed.then(done, done);
  return app();
});`,
  },
  {
    label: "the wrapper (both, and the counter)",
    serve: `Deno.serve({ port }, (request, info) => {
  open++;
  info.completed.then(done, done);
  if (request.url.indexOf("${MARKER}") < 0) {
    served++;
    return app(request, info);
  }
  return new Response("hop");
});`,
  },
  {
    label: "(request) => app reading request.url",
    serve: `Deno.serve({ port }, (request) => routed(request));`,
  },
  {
    label: "the wrapper around that app",
    serve: `Deno.serve({ port }, (request, info) => {
  open++;
  info.completed.then(done, done);
  if (request.url.indexOf("${MARKER}") < 0) {
    served++;
    return routed(request, info);
  }
  return new Response("hop");
});`,
  },
];

type Client = "keep-alive" | "close";
const CLIENTS: Client[] = ["keep-alive", "close"];
const FOREIGN_LIMIT = 0.1;

interface Result {
  rps: number[];
  us: number[];
}

async function measure(dir: string, index: number, client: Client, into: Result): Promise<void> {
  const port = freePort();
  const server = new BenchServer(["run", "-N", "--allow-env", `v${index}.ts`], {
    cwd: dir,
    env: { PORT: String(port) },
    cpus: SERVER_CPUS,
  });
  try {
    await server.answers(`http://127.0.0.1:${port}/`);
    const headers = client === "close" ? ["Connection: close"] : [];
    await wrk(port, { connections: 64, seconds: 2, headers });
    for (let tries = 0; tries < 3; tries++) {
      await untilQuiet({ timeoutMs: 900_000 });
      const window = cpuWindow(() => server.pids());
      const result = await wrk(port, { connections: 64, seconds: 5, headers });
      const cpu = window.end(result.cpuSeconds);
      if (cpu.foreign > FOREIGN_LIMIT) continue;
      into.rps.push(result.rps);
      into.us.push((cpu.server * cpu.seconds * 1e6) / result.requests);
      return;
    }
  } finally {
    await server.stop();
  }
}

export async function benchRequestPath(rounds = 5): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-request-path-" });
  const results = VARIANTS.map(() => ({
    "keep-alive": { rps: [], us: [] } as Result,
    close: { rps: [], us: [] } as Result,
  }));
  try {
    for (const [i, variant] of VARIANTS.entries()) {
      await Deno.writeTextFile(`${dir}/v${i}.ts`, `${PRELUDE}${variant.serve}\n`);
    }
    for (let round = 0; round < rounds; round++) {
      const shift = round % VARIANTS.length;
      const order = [...VARIANTS.keys()].map((i) => (i + shift) % VARIANTS.length);
      for (const i of order) {
        for (const client of CLIENTS) await measure(dir, i, client, results[i][client]);
      }
      console.error(`round ${round + 1} of ${rounds} done`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const rows = VARIANTS.flatMap((variant, i) =>
    CLIENTS.map((client) => {
      const own = results[i][client];
      const base = results[0][client];
      return [
        variant.label,
        client === "close" ? "new connection per request" : "keep-alive",
        Math.round(median(own.rps)),
        (median(own.rps) / median(base.rps)).toFixed(3),
        median(own.us).toFixed(2),
        `+${(median(own.us) - median(base.us)).toFixed(2)}`,
        own.us.length,
      ];
    })
  );
  const title = `### What the worker's handler wrapper costs ` +
    `(plain deno run, wrk -t1 -c64 pinned, 5 s, median of ${rounds} rounds)`;
  return [
    title,
    "",
    machine(),
    "",
    table([
      "handler (plain deno run)",
      "client",
      "requests/s",
      "÷ first row",
      "server µs/request",
      "µs more than the first row",
      "clean samples",
    ], rows),
  ].join("\n");
}

if (import.meta.main) console.log(await benchRequestPath(Number(Deno.args[0] ?? 5)));
