/** The module graphs' computations, with the real `deno info` behind a wrapper that logs each run. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ModuleGraphs } from "./module_graph.ts";

Deno.test("graphs are computed one at a time: requests while one runs make one more, after it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-graph-" });
  try {
    await Deno.writeTextFile(join(dir, "main.ts"), 'import "./dep.ts";\n');
    await Deno.writeTextFile(join(dir, "dep.ts"), "export const dep = 1;\n");
    const log = join(dir, "runs.log");
    // Logs each `deno info` as it begins and ends; the first one lingers, so that the
    // requests below all come while it runs.
    const wrapper = join(dir, "deno-wrapper.sh");
    await Deno.writeTextFile(
      wrapper,
      `#!/bin/sh
echo begin >> '${log}'
[ -e '${dir}/first-done' ] || { sleep 0.5; touch '${dir}/first-done'; }
'${Deno.execPath()}' "$@"
status=$?
echo end >> '${log}'
exit $status
`,
    );
    await Deno.chmod(wrapper, 0o755);
    const graphs = new ModuleGraphs({
      deno: wrapper,
      cwd: dir,
      entries: { workers: { entry: join(dir, "main.ts"), denoFlags: [] }, processes: [] },
      workerDirs: [],
      onUnavailable: (why) => assert.fail(`graphs unavailable: ${why}`),
      recheck: () => {},
    });
    const first = graphs.refresh();
    const queued = [graphs.refresh(), graphs.refresh(), graphs.refresh()];
    assert.equal(queued[0], queued[2], "the requests made while one ran share one computation");
    await Promise.all([first, ...queued]);
    const runs = (await Deno.readTextFile(log)).trim().split("\n");
    assert.deepEqual(runs, ["begin", "end", "begin", "end"]);
    assert.deepEqual(graphs.describe(), { current: true, workers: 2, processes: {} });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("stopping ends a graph computation still running, and starts none", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-graph-" });
  try {
    await Deno.writeTextFile(join(dir, "main.ts"), "export {};\n");
    const pidFile = join(dir, "pid");
    // A `deno info` that would run for a minute, with a child of its own.
    const wrapper = join(dir, "deno-wrapper.sh");
    await Deno.writeTextFile(wrapper, `#!/bin/sh\nsleep 60 &\necho $$ $! > '${pidFile}'\nwait\n`);
    await Deno.chmod(wrapper, 0o755);
    const graphs = new ModuleGraphs({
      deno: wrapper,
      cwd: dir,
      entries: { workers: { entry: join(dir, "main.ts"), denoFlags: [] }, processes: [] },
      workerDirs: [],
      onUnavailable: (why) => assert.fail(`a stopped computation was reported: ${why}`),
      recheck: () => {},
    });
    const computing = graphs.refresh();
    const deadline = Date.now() + 10_000;
    let pids: number[] = [];
    while (pids.length < 2) {
      if (Date.now() > deadline) throw new Error("the command never started");
      await new Promise((resolve) => setTimeout(resolve, 10));
      pids = (await Deno.readTextFile(pidFile).catch(() => "")).trim().split(" ").filter(Boolean)
        .map(Number);
    }
    graphs.stop();
    await computing;
    const alive = (pid: number) => {
      try {
        return !Deno.readTextFileSync(`/proc/${pid}/stat`).includes(") Z ");
      } catch {
        return false;
      }
    };
    while (pids.some(alive)) {
      if (Date.now() > deadline) throw new Error(`still running after stop: ${pids.filter(alive)}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await graphs.refresh();
    assert.equal(graphs.describe()?.current, false, "no graph was computed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
