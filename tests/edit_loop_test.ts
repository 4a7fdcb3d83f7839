/**
 * The edit loop with warm spares and a one-step switch: a spare started
 * before a change serves the new code once released, a dead spare is
 * replaced, no old response is seen once a reload is reported done.
 */
import assert from "node:assert/strict";
import { type Hotreload, httpGet, runCli, waitFor, withHotreload } from "./helpers.ts";

const app = (body: string) =>
  `Deno.serve((_req) => new Response(${JSON.stringify(body)} + " " + Deno.pid));\n`;

interface Row {
  pid: number;
  state: string;
  generation: number | null;
}

async function rows(dir: string): Promise<Row[]> {
  return JSON.parse((await runCli(["status", "--json"], dir)).stdout).children;
}

/**
 * Once 2 workers are ready and 2 spares wait, writes `source` as main.ts and
 * waits for the reload to be done; returns the spares' pids.
 */
async function editWithTwoSpares(run: Hotreload, dir: string, source: string): Promise<number[]> {
  await run.waitForReady(2);
  await waitFor(
    async () => (await rows(dir)).filter((r) => r.state === "spare").length === 2,
    "2 spares",
  );
  const spares = (await rows(dir)).filter((r) => r.state === "spare").map((r) => r.pid);
  await Deno.writeTextFile(`${dir}/main.ts`, source);
  await run.waitForOutput(/reloaded 2 workers in \d+ ms \(generation 2/);
  return spares;
}

Deno.test("a spare started before the change serves the new code once released; the switch leaves no old answer", () =>
  withHotreload(
    { "main.ts": app("v1") },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "-w", "2"],
    async (run, { dir, port }) => {
      // The spares were started (and have waited) before this edit: they read no code until released.
      const spares = await editWithTwoSpares(run, dir, app("v2"));
      // Reported done: every answer is new from now on.
      const pids = new Set<number>();
      for (let i = 0; i < 40; i++) {
        const { body } = await httpGet(port);
        assert.match(body, /^v2 \d+$/, "no old answer after the reload is done");
        pids.add(Number(body.split(" ")[1]));
      }
      assert.ok(
        [...pids].every((pid) => spares.includes(pid)),
        `${[...pids]} were the spares ${spares}`,
      );
    },
  ));

/** An app that answers with what it reads of its slot (or why it cannot read it). */
const slotApp = (version: string) =>
  `const read = (name) => { try { return Deno.env.get(name) ?? "unset"; } catch { return "denied"; } };\n` +
  `Deno.serve((_req) => new Response(${JSON.stringify(version)} + " " + Deno.pid + " " + ` +
  `read("HOTRELOAD_WORKER_ID") + " " + read("HOTRELOAD_GENERATION")));\n`;

for (const allowed of [true, false]) {
  Deno.test(
    `a released spare's app reads its slot as a worker started for it does (${
      allowed ? "with" : "without"
    } env permission)`,
    () =>
      withHotreload(
        { "main.ts": slotApp("v1") },
        (port) => [
          "run",
          "main.ts",
          "-N",
          ...(allowed ? ["--allow-env=HOTRELOAD_WORKER_ID,HOTRELOAD_GENERATION"] : []),
          "--port",
          String(port),
          "-w",
          "2",
        ],
        async (run, { dir, port }) => {
          const spares = await editWithTwoSpares(run, dir, slotApp("v2"));
          const seen = new Map<number, string>();
          await waitFor(async () => {
            const [version, pid, ...slot] = (await httpGet(port)).body.split(" ");
            assert.equal(version, "v2", "no old answer after the reload is done");
            seen.set(Number(pid), slot.join(" "));
            return seen.size === 2;
          }, "both new workers to answer");
          assert.deepEqual([...seen.keys()].sort(), [...spares].sort(), "they are the spares");
          const ids = [...seen.values()].sort();
          assert.deepEqual(ids, allowed ? ["0 2", "1 2"] : ["denied denied", "denied denied"]);
        },
      ),
  );
}

Deno.test("a spare that dies is replaced, and no worker is missing", () =>
  withHotreload(
    { "main.ts": app("v1") },
    (port) => ["run", "main.ts", "-N", "--port", String(port), "-w", "2", "--spares", "1"],
    async (run, { dir }) => {
      await run.waitForReady(2);
      const spare = await waitFor(
        async () => (await rows(dir)).find((r) => r.state === "spare"),
        "a spare",
      );
      Deno.kill(spare.pid, "SIGKILL");
      await waitFor(async () => {
        const now = await rows(dir);
        const spares = now.filter((r) => r.state === "spare");
        return spares.length === 1 && spares[0].pid !== spare.pid &&
          now.filter((r) => r.state === "ready").length === 2;
      }, "a new spare, and both workers ready");
      assert.ok(run.output.has(`a spare (pid ${spare.pid}) exited`), run.output.text());
      assert.ok(!run.output.has(/restarting in/), "a spare's death is no worker crash");
    },
  ));

Deno.test("--spares 0 --switch rolling: no spare, reloads one worker at a time as before", () =>
  withHotreload(
    { "main.ts": app("v1") },
    (
      port,
    ) => [
      "run",
      "main.ts",
      "-N",
      "--port",
      String(port),
      "-w",
      "2",
      "--spares",
      "0",
      "--switch",
      "rolling",
    ],
    async (run, { dir, port }) => {
      await run.waitForReady(2);
      assert.deepEqual((await rows(dir)).filter((r) => r.state === "spare"), []);
      const reload = await runCli(["reload"], dir);
      assert.equal(reload.code, 0, reload.stderr);
      assert.match((await httpGet(port)).body, /^v1 \d+$/);
      // Rolling: one at a time, each new worker through its 1000 ms settle window
      // before the next starts, so the reload takes two windows at least.
      const ms = Number(run.output.text().match(/reloaded 2 workers in (\d+) ms/)?.[1]);
      assert.ok(ms >= 2000, run.output.text());
    },
  ));
