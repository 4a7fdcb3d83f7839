/**
 * End-to-end: worker pools on one port, app styles, permissions, output relay.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  httpGet,
  makeProject,
  MOD_URL,
  serveArgs,
  sparePids,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";
import { WORKER_MALLOC_TUNABLES } from "../src/runtime/protocol.ts";

const PID_APP = `Deno.serve((_req) => new Response(String(Deno.pid)));\n`;

Deno.test("4 workers answer on one port with 4 distinct pids", async () => {
  await withHotreload(
    { "main.ts": PID_APP },
    (port) => serveArgs(port, "--workers", "4"),
    async (run, { port }) => {
      await run.waitForReady(4);
      const pids = new Set<string>();
      // waitFor retries a check that throws: collect bad answers to assert on afterwards.
      const notOk: number[] = [];
      await waitFor(
        async () => {
          const response = await httpGet(port);
          if (response.status !== 200) notOk.push(response.status);
          else pids.add(response.body);
          return pids.size === 4;
        },
        "4 distinct pids answering",
        20_000,
        0,
      );
      assert.deepEqual(notOk, [], "every answer was 200");
      const workerPids = run.output.matches(/worker \d+ ready \(pid (\d+)/).map((m) => m[1]);
      assert.deepEqual([...pids].sort(), [...workerPids].sort());
      assert.equal(taggedPids(run.tag).length, 5, "the supervisor and 4 workers");
    },
  );
});

Deno.test("an export default { fetch } app is served unchanged", async () => {
  await withHotreload(
    {
      "app.ts":
        `export default { fetch(req: Request) { return new Response("default " + new URL(req.url).pathname); } };\n`,
    },
    (port) => ["run", "-N", "app.ts", "--port", String(port), "--no-watch"],
    async (run, { port }) => {
      await run.waitForReady(1);
      const response = await httpGet(port, "/hi");
      assert.equal(response.status, 200);
      assert.equal(response.body, "default /hi");
      assert.ok(!run.output.has("deno serve"), "the `deno serve` hint is not relayed");
    },
  );
});

Deno.test("workers get exactly the user's Deno flags, the HOTRELOAD_* env and the app args", async () => {
  const dir = await makeProject({
    "main.ts": `
import { workerInfo } from "${MOD_URL}";
const env = Deno.permissions.querySync({ name: "env" }).state;
const write = Deno.permissions.querySync({ name: "write" }).state;
Deno.serve((_req) => new Response(JSON.stringify({
  env, write, args: Deno.args, info: workerInfo(), main: import.meta.main,
  vars: env === "granted" ? [Deno.env.get("HOTRELOAD"), Deno.env.get("HOTRELOAD_WORKERS"), Deno.env.get("PORT")] : null,
})));
`,
  });
  const port = freePort();
  // Options and Deno flags on both sides of the entry; app args after "--".
  const run = new Hotreload(
    [
      "run",
      "--port",
      String(port),
      "--allow-net",
      "main.ts",
      "--allow-env",
      "-w",
      "2",
      "--no-watch",
      "--",
      "--flag",
      "x",
    ],
    dir,
  );
  try {
    await run.waitForReady(2);
    const body = JSON.parse((await httpGet(port)).body);
    assert.equal(body.env, "granted");
    assert.notEqual(body.write, "granted", "no permission the user did not give");
    assert.deepEqual(body.args, ["--flag", "x"]);
    assert.equal(body.main, true, "import.meta.main stays true in the entry");
    assert.deepEqual(body.vars, ["1", "2", String(port)]);
    assert.equal(body.info.workers, 2);
    assert.equal(body.info.generation, 1);
    assert.ok([0, 1].includes(body.info.id));
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("each child line is relayed with its worker id and pid; a partial last line is flushed", async () => {
  await withHotreload(
    {
      "main.ts": `
console.log("to stdout");
console.error("to stderr");
Deno.stdout.writeSync(new TextEncoder().encode("no newline at the end"));
Deno.exit(3);
`,
    },
    () => ["run", "main.ts", "--no-watch"],
    async (run) => {
      await run.waitForOutput(/exit code 3/);
      const pid = run.output.matches(/\[worker 0 (\d+)\] to stdout/)[0]?.[1];
      assert.ok(pid, run.output.text());
      assert.ok(run.output.has(`[worker 0 ${pid}] to stderr`));
      assert.ok(run.output.has(`[worker 0 ${pid}] no newline at the end`));
    },
  );
});

// What the app and a process it starts see of GLIBC_TUNABLES, and the worker's pid.
const TUNABLES_APP = (version: number) => `
const shell = new Deno.Command("sh", { args: ["-c", 'printf "%s" "\${GLIBC_TUNABLES-unset}"'] });
Deno.serve({ port: Number(Deno.env.get("PORT")) }, async () => {
  const child = new TextDecoder().decode((await shell.output()).stdout);
  let app;
  try {
    app = Deno.env.get("GLIBC_TUNABLES") ?? "unset";
  } catch {
    app = "not permitted";
  }
  return Response.json({ pid: Deno.pid, app, child, version: ${version} });
});
`;
const TUNABLES_FLAGS = ["-N", "--allow-run=sh"];

interface TunablesAnswer {
  pid: number;
  app: string;
  child: string;
  version: number;
}

/** The app's answer under plain `deno run` with `flags` and `env` (the reference). */
async function plainTunables(dir: string, flags: string[], env: Record<string, string>) {
  const port = freePort();
  const plain = new Deno.Command(Deno.execPath(), {
    args: ["run", ...TUNABLES_FLAGS, ...flags, "main.ts"],
    cwd: dir,
    env: { ...env, PORT: String(port) },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    return await waitFor(
      async () => JSON.parse((await httpGet(port)).body) as TunablesAnswer,
      "plain deno run answers",
    );
  } finally {
    plain.kill("SIGKILL");
    await plain.status;
  }
}

/**
 * GLIBC_TUNABLES in the environment process `pid` started with. glibc 2.36
 * writes a NUL over each ":" of it in /proc/<pid>/environ's memory as it
 * reads its tunables (its own copy, which getenv returns, is whole), so the
 * pieces after the entry are joined back.
 */
function startedWith(pid: number): string | undefined {
  const entries = Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0");
  const at = entries.findIndex((entry) => entry.startsWith("GLIBC_TUNABLES="));
  if (at === -1) return undefined;
  const pieces = [entries[at].slice("GLIBC_TUNABLES=".length)];
  for (const entry of entries.slice(at + 1)) {
    if (!entry.startsWith("glibc.")) break;
    pieces.push(entry);
  }
  return pieces.join(":");
}

Deno.test("workers start with hotreload's malloc tunables only where the app cannot tell: the app and its children see what plain deno run gives them, with the user's GLIBC_TUNABLES, an empty one, an env file's, or env permission for PORT alone", async () => {
  assert.equal(
    Deno.env.get("GLIBC_TUNABLES"),
    undefined,
    "the test runner must not set GLIBC_TUNABLES",
  );
  const cases: {
    name: string;
    env: Record<string, string>;
    flags: string[];
    file?: string;
    ours: boolean;
  }[] = [
    { name: "unset", env: {}, flags: ["--allow-env"], ours: true },
    {
      name: "environment",
      env: { GLIBC_TUNABLES: "glibc.malloc.arena_max=2" },
      flags: ["--allow-env"],
      ours: false,
    },
    { name: "empty", env: { GLIBC_TUNABLES: "" }, flags: ["--allow-env"], ours: false },
    {
      name: "env file",
      env: {},
      flags: ["--allow-env", "--env-file=app.env"],
      file: "GLIBC_TUNABLES=glibc.malloc.arena_max=3\n",
      ours: false,
    },
    // The preload could not remove it, and the shell would inherit it: not set.
    { name: "env permission for PORT alone", env: {}, flags: ["--allow-env=PORT"], ours: false },
  ];
  for (const { name, env, flags, file, ours } of cases) {
    const dir = await makeProject({
      "main.ts": TUNABLES_APP(1),
      ...(file ? { "app.env": file } : {}),
    });
    try {
      const plain = await plainTunables(dir, flags, env);
      const port = freePort();
      // Watching, 2 workers: a spare per worker, released by the edit.
      const run = new Hotreload(
        ["run", "main.ts", ...TUNABLES_FLAGS, ...flags, "--port", String(port), "-w", "2"],
        dir,
        env,
      );
      try {
        await run.waitForReady(2);
        const check = (answer: TunablesAnswer) => {
          assert.equal(answer.app, plain.app, `${name}: the app sees what plain deno run shows`);
          assert.equal(
            answer.child,
            plain.child,
            `${name}: its child inherits what plain deno run's would`,
          );
          const started = startedWith(answer.pid);
          if (ours) {
            assert.equal(
              started,
              WORKER_MALLOC_TUNABLES,
              `${name}: the worker started with the tunables`,
            );
          } else {assert.equal(
              started,
              env.GLIBC_TUNABLES,
              `${name}: the user's environment, untouched`,
            );}
        };
        check(JSON.parse((await httpGet(port)).body));
        const spares = await waitFor(async () => {
          const pids = await sparePids(dir);
          return pids.size === 2 ? pids : undefined;
        }, `${name}: 2 spares`);
        await Deno.writeTextFile(`${dir}/main.ts`, TUNABLES_APP(2));
        const fromSpare = await waitFor(async () => {
          const answer = JSON.parse((await httpGet(port)).body) as TunablesAnswer;
          if (answer.version !== 2) throw new Error("still the old code");
          return answer;
        }, `${name}: the edit is served`);
        assert.ok(spares.has(fromSpare.pid), `${name}: the edit is served by a released spare`);
        check(fromSpare);
      } finally {
        await run.cleanup();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});
