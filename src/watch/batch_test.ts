/** Change batches: coalescing, and the longer quiet a build's burst gets. */
import assert from "node:assert/strict";
import { ChangeSet, maxWaitFor, quietFor } from "./batch.ts";
import type { Change } from "./mod.ts";

const added = (path: string): Change => ({ path, kind: "added" });
const changed = (path: string): Change => ({ path, kind: "changed" });
const removed = (path: string): Change => ({ path, kind: "removed" });

Deno.test("a build's burst (10 paths or more, or a removal) waits for a longer quiet, and longer", () => {
  assert.equal(quietFor(20, 1), 20);
  assert.equal(quietFor(20, 9), 20);
  assert.equal(quietFor(20, 10), 300);
  assert.equal(quietFor(20, 1, true), 300);
  assert.equal(quietFor(500, 1, true), 500, "a longer --debounce stands");
  assert.equal(quietFor(20, 1, false, true), 8, "every write closed: the settled share");
  assert.equal(quietFor(20, 10, false, true), 300, "a build waits for its quiet, settled or not");
  assert.equal(quietFor(20, 1, true, true), 300);
  assert.equal(maxWaitFor(20, 1), 1000);
  assert.equal(maxWaitFor(20, 200), 10_000);
});

Deno.test("ChangeSet coalescing", () => {
  const cases: [string[], string | null][] = [
    [["added", "changed"], "added"],
    [["added", "removed"], null],
    [["changed", "removed"], "removed"],
    [["removed", "added"], "changed"],
    [["changed", "changed"], "changed"],
    [["added", "removed", "added"], "added"],
    [["removed", "added", "removed"], "removed"],
  ];
  for (const [kinds, want] of cases) {
    const s = new ChangeSet();
    for (const k of kinds) s.record("p.ts", k as Change["kind"]);
    assert.deepEqual(
      s.take(),
      want === null ? [] : [{ path: "p.ts", kind: want }],
      kinds.join("+"),
    );
  }
  const s = new ChangeSet();
  s.record("b.ts", "added");
  s.record("a/z.ts", "changed");
  s.record("a.ts", "removed");
  s.record("b.ts", "changed");
  assert.deepEqual(s.take(), [removed("a.ts"), changed("a/z.ts"), added("b.ts")]);
  assert.deepEqual(s.take(), []);
});
