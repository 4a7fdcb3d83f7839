import assert from "node:assert/strict";
import { retiredExit, SameError } from "./worker_exits.ts";

const child = (readyAt?: number, killedAt?: number) => ({
  readyAt,
  killedAt,
  spec: { id: 0, generation: 3 } as never,
});

Deno.test("retiredExit: drained, stopped before ready, of a generation that failed, killed and why", () => {
  assert.equal(retiredExit(child(10), undefined, false), "exited after draining");
  assert.equal(retiredExit(child(), undefined, false), "was stopped before it was ready");
  assert.equal(
    retiredExit(child(), undefined, true),
    "of generation 3, which failed to start, was stopped",
  );
  assert.equal(
    retiredExit(child(10, 20), "over --max-memory", false),
    "over --max-memory; replaced",
  );
  assert.equal(retiredExit(child(10, 20), undefined, false), "is gone (killed)");
});

Deno.test("SameError: a new error is shown (0), the same one counts the workers it hits", () => {
  const same = new SameError();
  assert.equal(same.hit("a"), 0);
  assert.equal(same.hit("a"), 2);
  assert.equal(same.hit("a"), 3);
  assert.equal(same.hit("b"), 0);
  assert.equal(same.hit("a"), 0);
});
