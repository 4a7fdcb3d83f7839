/**
 * Scenarios that must not fail a single request under load: rolling reloads,
 * scaling up and down, and --max-requests recycling. Run by the tests inside
 * a network namespace with tcp_migrate_req=1 (tests/netns.ts); each prints
 * its result as JSON on the last line.
 */
import { freePort, Hotreload, makeProject, runCli, serveArgs, waitFor } from "../helpers.ts";
import { requestLoop, waitForBody } from "../load.ts";
import { npmProject } from "../frameworks.ts";

const { scenario } = JSON.parse(Deno.args[0] ?? "{}") as { scenario: string };
/** Answers `body`, and its pid on /pid. */
const app = (body: string) =>
  `Deno.serve((req) => new Response(new URL(req.url).pathname === "/pid" ? String(Deno.pid) : ${
    JSON.stringify(body)
  }));\n`;

async function workersReady(dir: string, n: number): Promise<boolean> {
  const result = await runCli(["status", "--json"], dir);
  const rows = JSON.parse(result.stdout).children.filter((c: { role: string }) =>
    c.role === "worker"
  );
  return rows.length === n && rows.every((c: { state: string }) => c.state === "ready");
}

const expressApp = (body: string) =>
  `import express from "express";
const app = express();
app.get("/", (req, res) => res.send(${JSON.stringify(body)}));
app.listen(process.env.PORT);
`;

const SCENARIOS: Record<string, {
  args: string[];
  workers: number;
  /** A new connection per request (default: keep-alive clients). */
  fresh?: boolean;
  /** The project (default: a Deno.serve app answering "v1" in main.ts). */
  project?: () => Promise<string>;
  run(run: Hotreload, dir: string, port: number): Promise<Record<string, unknown>>;
}> = {
  /** A SIGHUP reload: the body changes to the new text. */
  reload: {
    args: ["-w", "2"],
    workers: 2,
    async run(run, dir, port) {
      await Deno.writeTextFile(`${dir}/main.ts`, app("v2"));
      run.signal("SIGHUP");
      await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2; SIGHUP\)/);
      await waitForBody(port, "v2");
      return {};
    },
  },
  /** Broken code is refused, the old workers keep serving, fixed code goes through. */
  "broken-reload": {
    args: ["-w", "2"],
    workers: 2,
    async run(run, dir, port) {
      await Deno.writeTextFile(`${dir}/main.ts`, `Deno.serve((_req) => new Response("v2")) +++;\n`);
      run.signal("SIGHUP");
      await run.waitForOutput(/reload aborted: worker 0 of generation 2 exited with exit code 1/);
      await waitForBody(port, "v1");
      await Deno.writeTextFile(`${dir}/main.ts`, app("v3"));
      run.signal("SIGHUP");
      await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 3/);
      await waitForBody(port, "v3");
      return { syntaxErrorReported: run.output.has(/^\s+error: .*SyntaxError/) };
    },
  },
  /** scale 3, scale 1, SIGTTIN, SIGTTOU. */
  scale: {
    args: [],
    workers: 1,
    async run(run, dir) {
      const steps: string[] = [];
      for (const [how, n] of [["3", 3], ["1", 1], ["SIGTTIN", 2], ["SIGTTOU", 1]] as const) {
        if (how.startsWith("SIG")) run.signal(how as Deno.Signal);
        else await runCli(["scale", how], dir);
        await waitFor(() => workersReady(dir, n), `${n} ready workers after ${how}`);
        steps.push(`${how}→${n}`);
      }
      return { steps };
    },
  },
  /** An Express app (node:http), reloaded 10 times by SIGHUP. */
  "express-reloads": {
    args: ["-w", "2"],
    workers: 2,
    project: () => npmProject({ "main.ts": expressApp("v1") }),
    async run(run, dir, port) {
      for (let n = 2; n <= 11; n++) {
        await Deno.writeTextFile(`${dir}/main.ts`, expressApp(`v${n}`));
        run.signal("SIGHUP");
        await run.waitForOutput(new RegExp(`reloaded 2 workers in \\d+ ms \\(generation ${n};`));
        await waitForBody(port, `v${n}`);
      }
      return { reloads: run.output.matches(/reloaded 2 workers/).length };
    },
  },
  /** Workers recycled after 40..50 requests. */
  "max-requests": {
    args: ["-w", "2", "--max-requests", "40", "--max-requests-jitter", "10"],
    workers: 2,
    async run(run) {
      await waitFor(
        () =>
          run.output.matches(/served \d+ requests \(--max-requests\): replacing it/).length >= 3,
        () => `3 recycles\n${run.output.text()}`,
      );
      return { limits: run.output.matches(/served (\d+) requests/).map((m) => Number(m[1])) };
    },
  },
};

/** Rolling reloads by SIGHUP, `n` of them, each awaited to its end and its new body. */
async function reloads(run: Hotreload, dir: string, port: number, workers: number, n: number) {
  for (let version = 2; version <= n + 1; version++) {
    await Deno.writeTextFile(`${dir}/main.ts`, app(`v${version}`));
    run.signal("SIGHUP");
    await run.waitForOutput(
      new RegExp(`reloaded ${workers} workers in \\d+ ms \\(generation ${version};`),
    );
    await waitForBody(port, `v${version}`);
  }
  return run.output.matches(/reloaded \d+ workers/).length;
}

/** Worker pids, from status. */
async function workerPids(dir: string): Promise<number[]> {
  const result = await runCli(["status", "--json"], dir);
  return JSON.parse(result.stdout).children
    .filter((c: { role: string; state: string }) => c.role === "worker" && c.state === "ready")
    .map((c: { pid: number }) => c.pid);
}

/** Steered (eBPF) scenarios: a new connection per request, tcp_migrate_req as the test sets it. */
const STEERED: typeof SCENARIOS = {
  /** 10 rolling reloads. */
  "steered-reloads": {
    args: ["-w", "2", "--handover", "ebpf"],
    workers: 2,
    fresh: true,
    async run(run, dir, port) {
      return { reloads: await reloads(run, dir, port, 2, 10) };
    },
  },
  /** scale 3, scale 1, SIGTTIN, SIGTTOU, as "scale" does, with fresh connections. */
  "steered-scale": {
    ...SCENARIOS.scale,
    args: ["--handover", "ebpf"],
    fresh: true,
  },
  /**
   * A worker killed (SIGKILL) under load: the kernel drops its socket from the
   * map, and its replacement is steered in once ready. Failures are counted
   * apart for the crash (requests the dead worker held) and for the time after.
   */
  "steered-crash": {
    args: ["-w", "3", "--handover", "ebpf"],
    workers: 3,
    fresh: true,
    async run(_run, dir, port) {
      const before = await workerPids(dir);
      Deno.kill(before[1], "SIGKILL");
      await waitFor(async () => {
        const pids = await workerPids(dir);
        return pids.length === 3 && !pids.includes(before[1]);
      }, "the killed worker's replacement to be ready");
      const after = await workerPids(dir);
      const load = requestLoop(port, 8, { fresh: true, path: "/pid" });
      await waitFor(() => load.peek().ok >= 300, "300 requests after the restart");
      const counts = await load.stop();
      return {
        afterRestart: { failures: counts.failures, pids: Object.keys(counts.bodies).map(Number) },
        workers: after,
      };
    },
  },
};
Object.assign(SCENARIOS, STEERED);

const chosen = SCENARIOS[scenario];
if (!chosen) throw new Error(`unknown scenario "${scenario}"`);
const dir = chosen.project ? await chosen.project() : await makeProject({ "main.ts": app("v1") });
const port = freePort();
const run = new Hotreload(
  chosen.project
    ? ["run", "main.ts", "-A", "--port", String(port), "--no-watch", ...chosen.args]
    : serveArgs(port, ...chosen.args),
  dir,
);
try {
  await run.waitForReady(chosen.workers);
  await waitForBody(port, "v1");
  const load = requestLoop(port, 8, { fresh: chosen.fresh });
  const details = await chosen.run(run, dir, port);
  const counts = await load.stop();
  const steered = run.output.has("handover: steered (eBPF)");
  console.log(JSON.stringify({ ...counts, steered, ...details }));
} finally {
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
