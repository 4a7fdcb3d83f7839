/** Coalescing: what arrives during a rollout becomes one follow-up; when spares go stale. */
import assert from "node:assert/strict";
import type { ControlReply } from "../control/protocol.ts";
import { coalesce, type ReloadRequest, staleForSpares } from "./reload_request.ts";

const change = (files: string[], processNames?: string[]): ReloadRequest => ({
  reason: "change",
  files,
  workers: processNames === undefined,
  processes: true,
  processNames,
});

Deno.test("reload request: coalescing keeps every reason, file, part and waiter", () => {
  const heard: ControlReply[] = [];
  let merged = coalesce(undefined, change(["b.ts"], ["queue"]));
  merged = coalesce(merged, { ...change(["a.ts"], ["mailer"]), why: "a.ts: mailer's graph" });
  assert.deepEqual(merged.processNames, ["queue", "mailer"], "only the processes named");
  assert.equal(merged.workers, false);
  merged = coalesce(merged, {
    reason: "SIGHUP",
    files: [],
    workers: true,
    processes: true,
    reply: (reply) => heard.push(reply),
  });
  assert.equal(merged.reason, "change, SIGHUP");
  assert.deepEqual(merged.files, ["a.ts", "b.ts"]);
  assert.equal(merged.workers, true);
  assert.equal(merged.processNames, undefined, "a request for every process covers all");
  assert.equal(merged.why, "a.ts: mailer's graph");
  merged.reply?.({ ok: true });
  assert.deepEqual(heard, [{ ok: true }]);
});

Deno.test("reload request: spares go stale unless only the app's modules changed", () => {
  assert.equal(staleForSpares(change(["src/a.ts", "b.mjs"])), false);
  assert.equal(staleForSpares(change(["src/a.ts", "deno.json"])), true);
  assert.equal(staleForSpares(change([".env"])), true);
  assert.equal(staleForSpares(change([])), true, "a reload without files may change anything");
});
