/**
 * Watching reloads only what a change touches: the module graphs of the
 * workers' entry and of each custom process's entry (deno info), with 2
 * workers and a queue consumer.
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, makeProject, runCli, waitFor } from "./helpers.ts";

const FILES = {
  "main.ts": `import { version } from "./lib.ts";
const settings = JSON.parse(await Deno.readTextFile("settings.json"));
Deno.serve(() => new Response(version + " " + settings.greeting));
`,
  "lib.ts": `export const version = "v1";\n`,
  "settings.json": `{ "greeting": "hello" }\n`,
  "consumer.ts": `import { queue } from "./qlib.ts";
console.log("consuming", queue);
setInterval(() => {}, 1000);
`,
  "qlib.ts": `export const queue = "jobs";\n`,
  "unused_test.ts": `Deno.test("nothing", () => {});\n`,
};

interface Row {
  role: string;
  pid: number;
  generation: number;
  state: string;
}

Deno.test("watching: a change reloads only the children whose module graph holds it", async () => {
  const dir = await makeProject(FILES);
  const port = freePort();
  const run = new Hotreload(
    ["run", "main.ts", "-N", "-R", "-w", "2", "--port", String(port)].concat(
      ["--process", "queue=consumer.ts"],
    ),
    dir,
  );
  const status = async () => JSON.parse((await runCli(["status", "--json"], dir)).stdout);
  /** The pids of the serving workers and of the process, once nothing is starting or draining. */
  const snapshot = async () => {
    const report = await status();
    const rows = report.children as Row[];
    return {
      workers: rows.filter((r) => r.role === "worker").map((r) => r.pid).sort(),
      process: rows.filter((r) => r.role === "process").map((r) => r.pid),
      spares: rows.filter((r) => r.role === "spare").length,
      generation: report.supervisor.generation as number,
      graphs: report.supervisor.graphs,
      settled: rows.every((r) => r.state === "ready" || r.state === "spare") &&
        !report.supervisor.reloading,
    };
  };
  const settledWithCurrentGraphs = async () => {
    let last: Awaited<ReturnType<typeof snapshot>> | undefined;
    await waitFor(async () => {
      last = await snapshot();
      return last.settled && last.graphs?.current === true && last.spares === 2;
    }, () => `settled, graphs current: ${JSON.stringify(last)}`);
    return last!;
  };
  try {
    await run.waitForReady(2);
    const start = await settledWithCurrentGraphs();
    assert.deepEqual(start.graphs.processes, { queue: 2 }, "consumer.ts and qlib.ts");
    assert.equal(start.graphs.workers, 2, "main.ts and lib.ts");

    // A file nothing imports: nothing reloads; the spares stay.
    await Deno.writeTextFile(`${dir}/unused_test.ts`, `Deno.test("still nothing", () => {});\n`);
    await run.waitForOutput(
      "1 file changed: unused_test.ts: nothing to reload; not imported by the app or any process " +
        "(rule: not-imported)",
    );
    const afterUnused = await settledWithCurrentGraphs();
    assert.deepEqual(afterUnused.workers, start.workers);
    assert.deepEqual(afterUnused.process, start.process);
    assert.equal(afterUnused.generation, start.generation);

    // Imported only by the consumer: only the consumer restarts.
    await Deno.writeTextFile(`${dir}/qlib.ts`, `export const queue = "jobs2";\n`);
    await waitFor(async () => (await snapshot()).generation > start.generation, "a reload");
    const afterQlib = await settledWithCurrentGraphs();
    assert.deepEqual(afterQlib.workers, start.workers, "the workers stay");
    assert.notDeepEqual(afterQlib.process, start.process, "the consumer restarted");

    // Imported only by the workers: only the workers reload.
    await Deno.writeTextFile(`${dir}/lib.ts`, `export const version = "v2";\n`);
    await waitFor(async () => (await snapshot()).generation > afterQlib.generation, "a reload");
    const afterLib = await settledWithCurrentGraphs();
    assert.equal(afterLib.workers.some((pid) => start.workers.includes(pid)), false);
    assert.deepEqual(afterLib.process, afterQlib.process, "the consumer stays");
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2 hello");

    // Read at run time, imported by nobody: everything reloads.
    await Deno.writeTextFile(`${dir}/settings.json`, `{ "greeting": "hi" }\n`);
    await waitFor(async () => (await snapshot()).generation > afterLib.generation, "a reload");
    const afterJson = await settledWithCurrentGraphs();
    assert.equal(afterJson.workers.some((pid) => afterLib.workers.includes(pid)), false);
    assert.notDeepEqual(afterJson.process, afterLib.process);
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2 hi");

    // A new import joins the workers' graph: its next change reloads the workers (only).
    await Deno.writeTextFile(`${dir}/extra.ts`, `export const extra = "x1";\n`);
    await run.waitForOutput(
      "1 file changed: extra.ts: nothing to reload; not imported by the app or any process",
    );
    await Deno.writeTextFile(
      `${dir}/main.ts`,
      FILES["main.ts"].replace(
        "version + ",
        "version + extra + ",
      ).replace(
        `import { version } from "./lib.ts";`,
        `import { version } from "./lib.ts";
import { extra } from "./extra.ts";`,
      ),
    );
    await waitFor(async () => (await snapshot()).generation > afterJson.generation, "a reload");
    const afterImport = await settledWithCurrentGraphs();
    assert.equal(afterImport.graphs.workers, 3, "main.ts, lib.ts and extra.ts");
    await Deno.writeTextFile(`${dir}/extra.ts`, `export const extra = "x2";\n`);
    await waitFor(async () => (await snapshot()).generation > afterImport.generation, "a reload");
    const afterExtra = await settledWithCurrentGraphs();
    assert.deepEqual(afterExtra.process, afterImport.process, "the consumer stays");
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), "v2x2 hi");
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});
