/** The module graphs' computations, with a wrapper standing in for `deno` (the real one behind it). */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ModuleGraphs } from "./module_graph.ts";

/** The workers' graphs of `dir/main.ts`, computed by running `script` as `deno`. */
async function graphsBehind(
  dir: string,
  script: string,
  onUnavailable: (why: string) => void,
): Promise<ModuleGraphs> {
  const wrapper = join(dir, "deno-wrapper.sh");
  await Deno.writeTextFile(wrapper, `#!/bin/sh\n${script}`);
  await Deno.chmod(wrapper, 0o755);
  return new ModuleGraphs({
    deno: wrapper,
    cwd: dir,
    entries: { workers: { entry: join(dir, "main.ts"), denoFlags: [] }, processes: [] },
    workerDirs: [],
    onUnavailable,
    recheck: () => {},
  });
}

/** Polls `check` every 10 ms until it holds; throws `what` after 10 s. */
async function until(check: () => boolean, what: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("graphs are computed one at a time: requests while one runs make one more, after it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-graph-" });
  try {
    await Deno.writeTextFile(join(dir, "main.ts"), 'import "./dep.ts";\n');
    await Deno.writeTextFile(join(dir, "dep.ts"), "export const dep = 1;\n");
    const log = join(dir, "runs.log");
    // Logs each `deno info` as it begins and ends.
    const graphs = await graphsBehind(
      dir,
      `echo begin >> '${log}'\n'${Deno.execPath()}' "$@"\nstatus=$?\necho end >> '${log}'\nexit $status\n`,
      (why) => assert.fail(`graphs unavailable: ${why}`),
    );
    const first = graphs.refresh();
    // Asked while the first runs (it has not even started its command yet).
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
    const graphs = await graphsBehind(
      dir,
      `sleep 60 &\necho $$ $! > '${pidFile}'\nwait\n`,
      (why) => assert.fail(`a stopped computation was reported: ${why}`),
    );
    const computing = graphs.refresh();
    let pids: number[] = [];
    const readPids = () => {
      try {
        pids = Deno.readTextFileSync(pidFile).trim().split(" ").filter(Boolean).map(Number);
      } catch { /* not written yet */ }
      return pids.length === 2;
    };
    await until(readPids, () => "the command never started");
    graphs.stop();
    await computing;
    const alive = (pid: number) => {
      try {
        return !Deno.readTextFileSync(`/proc/${pid}/stat`).includes(") Z ");
      } catch {
        return false;
      }
    };
    await until(() => !pids.some(alive), () => `still running after stop: ${pids.filter(alive)}`);
    await graphs.refresh();
    assert.equal(graphs.describe()?.current, false, "no graph was computed");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
