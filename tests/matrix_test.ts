/**
 * The promise matrix: every switch × handover, with keep-alive and
 * new-connection clients at once, through an edit, the reload command,
 * SIGHUP, a crash, a recycle and scaling up and down, each row in a network
 * namespace of its own. Steered, no request fails and no answer is stale
 * (but those a killed worker held); without steering, the documented bound.
 */
import assert from "node:assert/strict";
import { allowedFailures, allowedStale, ROWS, runRow, UNSTEERED_BOUND } from "./matrix.ts";
import type { Seen } from "./load.ts";
import { runScenario } from "./netns.ts";

for (const row of ROWS) {
  Deno.test(`promise matrix: --switch ${row.switch}, --handover ${row.handover}`, async () => {
    const result = await runRow(row);
    assert.equal(result.steered, row.handover === "ebpf", "the handover asked for is the one used");
    for (
      const [kind, byTrigger] of [["keep-alive", result.keepAlive], [
        "fresh",
        result.fresh,
      ]] as const
    ) {
      for (const [trigger, seen] of Object.entries(byTrigger)) {
        const where = `${kind} clients, ${trigger}: ${JSON.stringify(seen.failed.slice(0, 3))}`;
        assert.ok(seen.ok > 0, `${where}: answered`);
        assert.ok(
          seen.failed.length <= allowedFailures(result, trigger, seen),
          `${where}: ${seen.failed.length} failed of ${seen.ok}`,
        );
        assert.ok(
          seen.stale <= allowedStale(result, trigger, seen),
          `${where}: ${seen.stale} stale`,
        );
      }
    }
  });
}

for (
  const [what, args] of [
    ["16 keep-alive clients over 4 edits, steered", { fresh: false, handover: "ebpf", edits: 4 }],
    ["16 keep-alive clients over 4 edits, --handover none", {
      fresh: false,
      handover: "none",
      edits: 4,
    }],
    ["16 new-connection clients over 6 edits, steered, tcp_migrate_req=0", {
      fresh: true,
      handover: "ebpf",
      edits: 6,
    }],
  ] as const
) {
  const steered = args.handover === "ebpf";
  const promise = steered ? "0 failed, 0 stale" : "failed and stale within the documented bound";
  Deno.test(`watching defaults, 4 workers: ${what}: ${promise}`, async () => {
    const result = await runScenario<Seen & { steered: boolean }>(
      "edits",
      { workers: 4, clients: 16, ...args },
      0,
    );
    console.log(
      `${what}: ${result.ok} answered, ${result.failed.length} failed, ${result.stale} stale`,
    );
    assert.equal(result.steered, steered);
    assert.ok(result.ok > 0);
    const bound = steered ? 0 : Math.floor(result.ok * UNSTEERED_BOUND);
    assert.ok(
      result.failed.length <= bound,
      `${result.failed.length} failed of ${result.ok}: ${result.failed.slice(0, 3)}`,
    );
    assert.ok(result.stale <= bound, `${result.stale} stale answers of ${result.ok}`);
  });
}
