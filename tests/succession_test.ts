/**
 * Takeover and succession: `run --takeover` replaces a running instance
 * (and one whose code cannot start leaves it serving); after a supervisor
 * dies, its workers keep serving for --orphan-grace, and a plain `run` of
 * the same name adopts and drains them once its own workers are ready.
 * Keep-alive and new-connection load loses nothing, steered and with
 * tcp_migrate_req=1 (unsteered, but a handshake reset as a listener closed:
 * tests/load.ts).
 */
import assert from "node:assert/strict";
import { racesAllowed, type seenOf, unexplained } from "./load.ts";
import { runScenario } from "./netns.ts";
import type { TakeoverResult as Takeover } from "./scenarios/takeover.ts";
import type { TakeoverKillResult as TakeoverKill } from "./scenarios/takeover_kill.ts";

interface Succession {
  steered: boolean;
  orphans: number;
  servedAlone: number;
  goneAfterMs: number;
  keepAlive: ReturnType<typeof seenOf>;
  fresh: ReturnType<typeof seenOf>;
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
    const races = racesAllowed(result.steered);
    for (const load of [result.keepAlive, result.fresh]) {
      assert.ok(load.ok > 0);
      assert.equal(unexplained(load, races), 0, load.sample.join("; "));
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

const TAKEOVER_MODES = [
  ["ebpf", 0, false],
  ["kernel", 1, false],
  // The watching defaults too: spares, a 100 ms close window, a watcher.
  ["ebpf", 0, true],
] as const;
for (const [handover, migrate, watching] of TAKEOVER_MODES) {
  const mode = `--handover ${handover}${watching ? ", watching" : ""}`;
  Deno.test(`takeover (${mode}): A taken over by B, B killed and succeeded by C: 0 failed; a takeover that cannot start leaves A serving`, async () => {
    const result = await runScenario<Takeover>("takeover", { handover, watching }, migrate);
    console.log(`takeover, ${mode}: ${JSON.stringify(result)}`);
    const steered = handover === "ebpf";
    assert.equal(result.steered, steered);
    // The takeover whose new code binds, then throws.
    const failed = result.failedTakeover;
    assert.equal(failed.code, 1, "run --takeover exits 1");
    assert.ok(failed.said, "it says the takeover was aborted, and why");
    assert.ok(failed.keptServing, "it says the old instance keeps serving");
    assert.equal(failed.statusPid, result.a, "status still answers from A");
    assert.ok(failed.servedAfter > 0);
    assert.deepEqual(failed.files, [
      "control.sock",
      "instance.json",
      "lock",
      "supervisor.pid",
      "workers.json",
    ], "the failed takeover left nothing in the instance's directory");
    if (steered) {
      // Without steering the new code is reachable from the moment it binds (README, Takeover).
      assert.equal(failed.failedRequests, 0);
      assert.equal(failed.brokenAnswers, 0, "the broken code never answered");
    }
    // A taken over by B, then B succeeded by C.
    assert.deepEqual(result.tookOver && [result.tookOver.pid, result.tookOver.version !== null], [
      result.a,
      true,
    ]);
    assert.equal(result.workersAfterTakeover, 3, "status shows B's workers after the takeover");
    assert.deepEqual(result.succeeded && [result.succeeded.pid, result.succeeded.workers], [
      result.b,
      3,
    ]);
    assert.equal(result.statusPid, result.c);
    assert.equal(result.workersAfterSuccession, 3, "status shows C's workers");
    for (const phase of [result.takeover, result.succession]) {
      for (const load of [phase.keepAlive, phase.fresh]) {
        assert.ok(load.ok > 0);
        assert.equal(
          unexplained(load, racesAllowed(steered)),
          0,
          load.sample.join("; "),
        );
      }
    }
    for (const body of ["v1", "v2", "v3"]) assert.ok(result.bodies.includes(body), body);
    assert.equal(result.stopCode, 0);
    assert.equal(result.left, 0, "nothing of A, B or C is left after stop");
    assert.equal(result.runtimeDirLeft, false, ".hotreload/ is removed after stop");
  });
}

/**
 * A takeover's new supervisor killed at its worst moments (before its
 * workers are ready, at the switch, 0.3 s after it first answered, while the
 * old instance drains): its workers are recorded from their start, serve on
 * through --orphan-grace, and the next `run --takeover` (or `run`) adopts
 * them; nothing fails meanwhile (steered).
 */
for (const point of ["before-ready", "switch", "after-answer", "old-draining"] as const) {
  Deno.test(`takeover killed with SIGKILL ${point}: 0 failed, its workers adopted or gone, nothing left`, async () => {
    const result = await runScenario<TakeoverKill>("takeover_kill", { handover: "ebpf", point }, 0);
    console.log(`takeover killed ${point}: ${JSON.stringify(result)}`);
    assert.equal(result.steered, true);
    for (
      const [kind, seen] of [["keep-alive", result.keepAlive], ["fresh", result.fresh]] as const
    ) {
      assert.ok(seen.ok > 0, `${kind}: answered`);
      assert.equal(seen.failed, 0, `${kind}: ${seen.failed} failed: ${seen.sample}`);
    }
    // Its workers had served (from the switch on): the next supervisor adopted them.
    if (point !== "before-ready") {
      assert.ok(result.adopted, "the killed takeover's workers adopted");
    }
    assert.equal(result.orphansLeft, 0);
    assert.equal(result.left, 0);
  });
}
