/**
 * End-to-end: `logs` (the last lines, and -f following an edit's reload to
 * the instance's stop, or to Ctrl-C), `run --detach` / `start` (ready, then
 * stopped; an app that throws at start: exit 1 with its error, nothing left
 * running), `list --all` from an unrelated directory against a hostile
 * registry, `--dir`, and `scale +1`, `-1`, `auto` with spares following.
 *
 * Every command runs with XDG_RUNTIME_DIR set to a directory of the test's
 * own, so that the per-user registry is the test's alone.
 */
import assert from "node:assert/strict";
import {
  CLI,
  freePort,
  Hotreload,
  killTagged,
  makeProject,
  Output,
  pidRunning,
  runCli,
  taggedPids,
  waitFor,
  watchingArgs,
} from "./helpers.ts";
import type { StatusReport } from "../src/control/protocol.ts";

const APP = `Deno.serve((_req) => new Response("v1"));\n`;

/** A fresh registry directory, and the environment that points every command at it. */
async function registryEnv(): Promise<{ dir: string; env: Record<string, string> }> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-registry-" });
  return { dir, env: { XDG_RUNTIME_DIR: dir } };
}

/** A `hotreload` command that keeps running (logs -f), its output read as it comes. */
function follow(args: string[], cwd: string, env: Record<string, string>) {
  const output = new Output();
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) output.feed(text);
  };
  const done = Promise.all([process.status, pump(process.stdout), pump(process.stderr)]).then(
    ([status]) => {
      output.end();
      return status;
    },
  );
  return { process, output, done };
}

async function status(dir: string, env: Record<string, string>): Promise<StatusReport> {
  const result = await runCli(["status", "--json"], dir, env);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout) as StatusReport;
}

/** What a test of a running instance gets: its run, project, registry env, and followers. */
interface Instance {
  run: Hotreload;
  dir: string;
  port: number;
  env: Record<string, string>;
  registry: string;
  /** Starts `hotreload logs ...` that keeps running; ended (killed if need be) at the end. */
  follow(args: string[]): ReturnType<typeof follow>;
}

/**
 * Runs hotreload (`args` of a free port) on a fresh project with a registry
 * of its own, runs `body`, and always ends both, and every follower.
 */
async function withInstance(
  args: (port: number) => string[],
  body: (instance: Instance) => Promise<void>,
  files: Record<string, string> = { "main.ts": APP },
): Promise<void> {
  const { dir: registry, env } = await registryEnv();
  const dir = await makeProject(files);
  const port = freePort();
  const run = new Hotreload(args(port), dir, env);
  const followers: ReturnType<typeof follow>[] = [];
  try {
    await body({
      run,
      dir,
      port,
      env,
      registry,
      follow(logsArgs) {
        const follower = follow(logsArgs, dir, env);
        followers.push(follower);
        return follower;
      },
    });
  } finally {
    for (const follower of followers) {
      try {
        follower.process.kill("SIGKILL");
      } catch { /* exited */ }
      await follower.done;
    }
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(registry, { recursive: true });
  }
}

Deno.test("logs --lines 5 shows the last lines; logs -f follows a reload to the stop", () =>
  withInstance(
    (port) => watchingArgs(port, "--workers", "2"),
    async ({ run, dir, env, follow }) => {
      await run.waitForOutput("2 worker(s) ready");
      const last = await runCli(["logs", "--lines", "5"], dir, env);
      assert.equal(last.code, 0, last.stderr);
      const lines = last.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 5, last.stdout);
      // Exactly as the supervisor printed them, its prefix and its children's.
      assert.match(lines.at(-1)!, /^\[hotreload\] 2 worker\(s\) ready in \d+ ms$/);
      for (const line of lines) assert.ok(run.output.lines.includes(line), `printed: ${line}`);
      assert.ok(lines.some((line) => /^\[worker \d \d+\] Listening on/.test(line)), last.stdout);

      const follower = follow(["logs", "-f", "--lines", "1"]);
      await waitFor(() => follower.output.has("2 worker(s) ready"), "the backlog line");
      await Deno.writeTextFile(`${dir}/main.ts`, `console.log("v2 starts");\n${APP}`);
      await waitFor(
        () => follower.output.has(/^\[hotreload\] reloaded 2 workers/),
        () => `the reload in logs -f\n${follower.output.text()}`,
      );
      assert.ok(follower.output.has(/^\[worker \d \d+\] v2 starts$/), follower.output.text());
      const stop = await runCli(["stop"], dir, env);
      assert.equal(stop.code, 0, stop.stderr);
      const end = await follower.done;
      assert.equal(end.code, 0, follower.output.text());
      assert.ok(follower.output.has(/^\[hotreload\] stopping/), follower.output.text());
      assert.match(
        follower.output.lines.at(-1)!,
        /^hotreload: "main" \(pid \d+\) stopped; no more output$/,
      );
    },
  ));

Deno.test("logs -f: Ctrl-C ends it with exit 0", () =>
  withInstance((port) => watchingArgs(port, "--workers", "1"), async ({ run, follow }) => {
    await run.waitForOutput("1 worker(s) ready");
    const follower = follow(["logs", "-f"]);
    await waitFor(() => follower.output.has("1 worker(s) ready"), "the backlog");
    follower.process.kill("SIGINT");
    const end = await follower.done;
    assert.equal(end.code, 0, follower.output.text());
    assert.ok(!follower.output.has(/error|no more output/i), follower.output.text());
  }));

Deno.test("logs of nothing running exits 3 with one line", async () => {
  const dir = await makeProject({ "main.ts": APP });
  try {
    const none = await runCli(["logs"], dir);
    assert.equal(none.code, 3, none.stderr);
    assert.equal(none.stderr.trim().split("\n").length, 1, none.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("logs -f follows an instance through an upgrade, to its new supervisor", () =>
  withInstance((port) => watchingArgs(port, "--workers", "1", "--no-watch"), async (i) => {
    const { run, dir, env, follow } = i;
    await run.waitForOutput("1 worker(s) ready");
    const follower = follow(["logs", "-f", "--lines", "1"]);
    // Connected: the backlog came.
    await waitFor(() => follower.output.has("1 worker(s) ready"), "the backlog");
    const upgraded = await runCli(["upgrade"], dir, env);
    assert.equal(upgraded.code, 0, upgraded.stderr);
    const successor = Number(upgraded.stderr.match(/taken over by supervisor pid (\d+)/)?.[1]);
    assert.ok(successor, upgraded.stderr);
    await waitFor(
      () => follower.output.has(`was taken over by supervisor pid ${successor}; following it`),
      () => `the follower following on\n${follower.output.text()}`,
    );
    // What the new supervisor prints from then on comes through.
    const stop = await runCli(["stop"], dir, env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await follower.done).code, 0, follower.output.text());
    assert.ok(follower.output.has(/^\[hotreload\] stopping/), follower.output.text());
    assert.match(
      follower.output.lines.at(-1)!,
      new RegExp(`^hotreload: "main" \\(pid ${successor}\\) stopped; no more output$`),
    );
  }));

Deno.test("run --detach returns once ready; logs, status and stop from elsewhere with --dir", async () => {
  const { dir: registry, env: base } = await registryEnv();
  const tag = crypto.randomUUID();
  const env = { ...base, HOTRELOAD_TEST_TAG: tag };
  const dir = await makeProject({ "main.ts": `console.log("app up");\n${APP}` });
  const elsewhere = await Deno.makeTempDir();
  const port = freePort();
  try {
    const started = await runCli(
      ["run", "main.ts", "-N", "--port", String(port), "--detach"],
      dir,
      env,
    );
    assert.equal(started.code, 0, started.stderr);
    const match = started.stdout.match(
      /^started "main" in the background: supervisor pid (\d+), port (\d+), \d+ worker\(s\) ready$/m,
    );
    assert.ok(match, started.stdout);
    const pid = Number(match[1]);
    assert.equal(Number(match[2]), port);
    assert.ok(pidRunning(pid));
    // Its own session: not in ours.
    const sid = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1].split(" ")[3];
    assert.equal(Number(sid), pid);

    const logs = await runCli(["logs", "--dir", dir, "--lines", "100"], elsewhere, env);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /^\[worker \d \d+\] app up$/m);
    const file = await Deno.readTextFile(`${dir}/.hotreload/main/output.log`);
    assert.match(file, /^\[worker \d \d+\] app up$/m);

    const listed = await runCli(["list", "--all", "--json"], elsewhere, env);
    assert.equal(listed.code, 0, listed.stderr);
    const all = JSON.parse(listed.stdout);
    assert.equal(all.length, 1, listed.stdout);
    assert.equal(all[0].pid, pid);
    assert.equal(all[0].dir, await Deno.realPath(dir));
    assert.equal(all[0].port, port);

    const stop = await runCli(["stop", "--dir", dir], elsewhere, env);
    assert.equal(stop.code, 0, stop.stderr);
    await waitFor(() => taggedPids(tag).length === 0, "every process of the instance to exit");
    const after = await runCli(["list", "--all", "--json"], elsewhere, env);
    assert.deepEqual(JSON.parse(after.stdout), []);
    // Its output stays where logs finds it.
    const old = await runCli(["logs", "--name", "main", "--lines", "1"], dir, env);
    assert.equal(old.code, 0, old.stderr);
    assert.match(old.stdout, /^\[hotreload\] stopped$/m);
  } finally {
    killTagged(tag);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
    await Deno.remove(registry, { recursive: true });
  }
});

Deno.test("start (run --detach) of an app that throws: exit 1 with its error, nothing left", async () => {
  const { dir: registry, env: base } = await registryEnv();
  const tag = crypto.randomUUID();
  const env = { ...base, HOTRELOAD_TEST_TAG: tag };
  const dir = await makeProject({ "main.ts": `throw new Error("no database configured");\n` });
  const port = freePort();
  try {
    const result = await runCli(["start", "main.ts", "-N", "--port", String(port)], dir, env);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /Error: no database configured/);
    assert.match(
      result.stderr.trimEnd().split("\n").at(-1)!,
      /^hotreload: "main" did not start: worker \d failed to start; nothing is left running$/,
    );
    assert.deepEqual(taggedPids(tag), []);
    const listed = await runCli(["list", "--all", "--json"], dir, env);
    assert.deepEqual(JSON.parse(listed.stdout), []);
  } finally {
    killTagged(tag);
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(registry, { recursive: true });
  }
});

Deno.test("list --all ignores and cleans a hostile registry", () =>
  withInstance(
    (port) => watchingArgs(port, "--workers", "1", "--name", "api"),
    async ({ run, dir, port, env, registry }) => {
      await run.waitForOutput("1 worker(s) ready");
      const reg = `${registry}/hotreload`;
      const names = () => [...Deno.readDirSync(reg)].map((e) => e.name).sort();
      assert.deepEqual(names(), [`${run.pid}.instance.json`]);
      const real = JSON.parse(await Deno.readTextFile(`${reg}/${run.pid}.instance.json`));
      // Garbage, a dead pid, a reused pid (ours, with another start time), a link, a foreign file.
      await Deno.writeTextFile(`${reg}/4242.instance.json`, "{ not json");
      await Deno.writeTextFile(
        `${reg}/999999.instance.json`,
        JSON.stringify({ ...real, pid: 999999 }),
      );
      await Deno.writeTextFile(
        `${reg}/${Deno.pid}.instance.json`,
        JSON.stringify({ ...real, pid: Deno.pid, startTime: 1, name: "impostor" }),
      );
      await Deno.symlink(`${reg}/${run.pid}.instance.json`, `${reg}/7.instance.json`);
      await Deno.writeTextFile(`${reg}/notes.txt`, "not ours");
      // From a directory that has nothing to do with the instance.
      const listed = await runCli(["list", "--all"], "/", env);
      assert.equal(listed.code, 0, listed.stderr);
      const rows = listed.stdout.trimEnd().split("\n");
      assert.equal(rows.length, 2, listed.stdout);
      assert.match(rows[0], /^NAME +PID +PORT +WORKERS +UPTIME +DIR$/);
      assert.match(
        rows[1],
        new RegExp(`^api +${run.pid} +${port} +1 +\\d+s +${await Deno.realPath(dir)}$`),
      );
      assert.deepEqual(
        names(),
        [`${run.pid}.instance.json`, "7.instance.json", "notes.txt"].sort(),
      );
      // Its own entry goes when it stops.
      const stop = await runCli(["stop"], dir, env);
      assert.equal(stop.code, 0, stop.stderr);
      assert.deepEqual(names(), ["7.instance.json", "notes.txt"]);
    },
  ));

Deno.test("scale +1, -1 and auto; with --spares auto the spares follow", () =>
  withInstance((port) => watchingArgs(port, "--workers", "1"), async ({ run, dir, env }) => {
    const count = (report: StatusReport, role: string) =>
      report.children.filter((row) => row.role === role && row.state !== "draining").length;
    const settled = (workers: number) =>
      waitFor(
        async () => {
          const report = await status(dir, env);
          return report.supervisor.workers === workers && count(report, "worker") === workers &&
            count(report, "spare") === workers;
        },
        `${workers} worker(s) and as many spares`,
      );
    await run.waitForOutput("1 worker(s) ready");
    await settled(1);
    let result = await runCli(["scale", "+1"], dir, env);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /scaling to 2 worker\(s\)/);
    await settled(2);
    result = await runCli(["scale", "-1"], dir, env);
    assert.equal(result.code, 0, result.stderr);
    await settled(1);
    result = await runCli(["scale", "-1"], dir, env);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(
      result.stderr,
      "hotreload: cannot scale to 0 worker(s) (1 - 1): at least 1 must run\n",
    );
    result = await runCli(["scale", "auto"], dir, env);
    assert.equal(result.code, 0, result.stderr);
    await settled(navigator.hardwareConcurrency);
  }));

/** Prints a 3 MB line of binary, then a flood of 20000 lines, then serves. */
const HOSTILE = `const bytes = new Uint8Array(3_000_000);
for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) % 256 === 10 ? 65 : (i * 7) % 256;
Deno.stdout.writeSync(bytes);
Deno.stdout.writeSync(new TextEncoder().encode("\\nend of the long line\\n"));
for (let i = 0; i < 20000; i++) console.log(\`flood \${i}\`);
Deno.serve((_req) => new Response("ok"));
`;

Deno.test("hostile output (binary, a 3 MB line, a flood): logs stays bounded and printable", () =>
  withInstance((port) => watchingArgs(port, "--workers", "1"), async ({ run, dir, env }) => {
    await run.waitForOutput("1 worker(s) ready", 60_000);
    await run.waitForOutput("flood 19999", 60_000);
    const all = await runCli(["logs", "--lines", "100000"], dir, env);
    assert.equal(all.code, 0, all.stderr);
    const lines = all.stdout.trimEnd().split("\n");
    assert.ok(lines.length <= 5000, `${lines.length} lines kept`);
    assert.ok(all.stdout.length <= 1024 * 1024 * 1.1, `${all.stdout.length} characters kept`);
    // The newest lines are the ones kept.
    assert.ok(lines.some((l) => /^\[worker 0 \d+\] flood 19999$/.test(l)), "the flood's end");
    for (const line of lines) {
      assert.ok(new TextEncoder().encode(line).length < 8300, `a line of ${line.length}`);
      // deno-lint-ignore no-control-regex
      assert.doesNotMatch(line, /[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f]/);
    }
    // The supervisor answered all along.
    assert.equal((await runCli(["status"], dir, env)).code, 0);
  }, { "main.ts": HOSTILE }));
