/**
 * One reload-under-load run, meant to run inside a network namespace (see
 * bench/reload.ts): a server (hotreload or `deno run --watch`) serves a file
 * that is rewritten `reloads` times while `clients` keep-alive clients send
 * requests; prints one JSON line with the counts and change-to-response latencies.
 */
import { parseArgs } from "node:util";
import { freePort, hotreloadArgs, spawnQuiet, until } from "./lib.ts";
import { npmProject } from "../tests/frameworks.ts";
import { CLI } from "../tests/helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mode: { type: "string", default: "hotreload" },
    workers: { type: "string", default: "4" },
    reloads: { type: "string", default: "20" },
    clients: { type: "string", default: "50" },
    fresh: { type: "boolean", default: false },
    app: { type: "string", default: "deno" },
    // More hotreload options, as one JSON array (e.g. the drain settings a row compares).
    options: { type: "string", default: "[]" },
  },
});
const extra = JSON.parse(values.options!) as string[];
const mode = values.mode as "hotreload" | "deno-watch";
const reloads = Number(values.reloads);
// --app express: the same app on Express 5 (node:http), from the tests' npm fixture.
const express = values.app === "express";
const dir = express ? await npmProject({}) : await Deno.makeTempDir({ prefix: "hotreload-bench-" });
const port = freePort();
const url = `http://127.0.0.1:${port}/`;
const source = (version: number) =>
  express
    ? `import express from "express";\nconst app = express();\n` +
      `app.get("/", (req, res) => res.send("v${version}"));\napp.listen(${port});\n`
    : `Deno.serve({ port: ${port} }, () => new Response("v${version}"));\n`;
await Deno.writeTextFile(`${dir}/main.ts`, source(0));

const server = spawnQuiet(
  mode !== "hotreload" ? ["run", "--watch", "-N", "main.ts"] : express
    ? [
      "run",
      "-A",
      CLI,
      "run",
      "main.ts",
      "-A",
      "-w",
      values.workers!,
      "--port",
      String(port),
      ...extra,
    ]
    : hotreloadArgs(values.workers!, port, extra),
  dir,
);

// Fresh connections for probing, so a probe always reaches whichever worker the kernel picks.
const probeClient = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
async function probe(): Promise<string> {
  const response = await fetch(url, { client: probeClient });
  return await response.text();
}

try {
  await until(async () => (await probe()) === "v0", "the server to answer");

  let running = true;
  let ok = 0;
  let failed = 0;
  const kinds: Record<string, number> = {};
  const fail = (kind: string) => {
    failed++;
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  };
  // Keep-alive clients by default; --fresh opens a new connection per request.
  const loadClient = Deno.createHttpClient(values.fresh ? { poolMaxIdlePerHost: 0 } : {});
  const client = async () => {
    while (running) {
      try {
        const response = await fetch(url, { client: loadClient });
        await response.arrayBuffer();
        response.ok ? ok++ : fail(`status ${response.status}`);
      } catch (error) {
        const text = String(error) + " " + String((error as Error).cause ?? "");
        fail(
          /reset/i.test(text)
            ? "reset"
            : /refused/i.test(text)
            ? "refused"
            : /closed before message completed/.test(text)
            ? "closed mid-request"
            : text.slice(0, 80),
        );
        // A refused connection fails instantly: pace the retry so a restart's downtime does not spin.
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  };
  const started = performance.now();
  const clients = Array.from({ length: Number(values.clients) }, client);

  const latencies: number[] = [];
  for (let version = 1; version <= reloads; version++) {
    await Deno.writeTextFile(`${dir}/main.ts`, source(version));
    const written = performance.now();
    await until(async () => (await probe()) === `v${version}`, `v${version} to be served`);
    latencies.push(performance.now() - written);
    // Every worker must serve the new version before the next change, or changes would coalesce.
    let streak = 0;
    await until(async () => {
      streak = (await probe()) === `v${version}` ? streak + 1 : 0;
      return streak >= 20;
    }, `all workers on v${version}`);
  }
  running = false;
  await Promise.all(clients);
  loadClient.close();
  console.log(JSON.stringify({
    mode,
    workers: Number(values.workers),
    ok,
    failed,
    kinds,
    latencies,
    seconds: (performance.now() - started) / 1000,
  }));
} finally {
  probeClient.close();
  try {
    server.kill("SIGTERM");
  } catch { /* already gone */ }
  await server.status;
  await Deno.remove(dir, { recursive: true });
}
