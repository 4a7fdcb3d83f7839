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
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";

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
