/**
 * Succession after a supervisor dies: its workers keep serving for
 * --orphan-grace, and a plain `run` of the same name adopts and drains them
 * once its own workers are ready; keep-alive and new-connection load loses
 * nothing, steered and with tcp_migrate_req=1.
 */
import assert from "node:assert/strict";
import { runScenario } from "./netns.ts";

interface Succession {
  steered: boolean;
  orphans: number;
  servedAlone: number;
  goneAfterMs: number;
  keepAlive: { ok: number; failed: number; sample: string[] };
  fresh: { ok: number; failed: number; sample: string[] };
  bodies: string[];
  succeeded: { pid: number; workers: number } | null;
  killed: number;
  workers: number;
}

for (const [handover, migrate] of [["ebpf", 0], ["kernel", 1]] as const) {
  Deno.test(`succession (--handover ${handover}): a supervisor killed with SIGKILL, its workers serve on, a plain run adopts them: 0 failed`, async () => {
    const result = await runScenario<Succession>("succession", { handover }, migrate);
    console.log(`succession, ${handover}: ${JSON.stringify(result)}`);
    assert.equal(result.steered, handover === "ebpf");
    assert.equal(result.orphans, 2);
    assert.ok(result.servedAlone > 0, "the orphans served while no supervisor ran");
    for (const load of [result.keepAlive, result.fresh]) {
      assert.ok(load.ok > 0);
      assert.equal(load.failed, 0, load.sample.join("; "));
    }
    assert.deepEqual(result.bodies, ["v1", "v2"], "the new code serves");
    assert.deepEqual(result.succeeded && [result.succeeded.pid, result.succeeded.workers], [
      result.killed,
      2,
    ]);
    assert.equal(result.workers, 3, "status shows the successor's workers");
    // Nothing of either is left: the scenario's cleanup checks both runs' tagged processes.
  });
}
