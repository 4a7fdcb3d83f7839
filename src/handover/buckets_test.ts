import assert from "node:assert/strict";
import { assignBuckets } from "./buckets.ts";

const counts = (table: string[]) =>
  Object.fromEntries(
    [...new Set(table)].sort().map((m) => [m, table.filter((x) => x === m).length]),
  );
const moved = (a: readonly string[], b: readonly string[]) => a.filter((x, i) => x !== b[i]).length;

Deno.test("buckets: shared out evenly, the first members one more when it does not divide", () => {
  assert.deepEqual(counts(assignBuckets([], ["a", "b", "c"], 256)), { a: 86, b: 85, c: 85 });
  assert.deepEqual(assignBuckets(["a"], [], 4), []);
});

Deno.test("buckets: a worker that leaves gives up only its own buckets", () => {
  const before = assignBuckets([], ["a", "b", "c", "d"], 256);
  const after = assignBuckets(before, ["a", "b", "d"], 256);
  assert.deepEqual(counts(after), { a: 86, b: 85, d: 85 });
  before.forEach((owner, i) => {
    if (owner !== "c") assert.equal(after[i], owner, `bucket ${i} of ${owner} kept`);
  });
});

Deno.test("buckets: a worker that joins takes just its share, from the others", () => {
  const before = assignBuckets([], ["a", "b", "c"], 256);
  const after = assignBuckets(before, ["a", "b", "c", "d"], 256);
  assert.deepEqual(counts(after), { a: 64, b: 64, c: 64, d: 64 });
  assert.equal(moved(before, after), 64, "only the newcomer's buckets changed hands");
});

Deno.test("buckets: unchanged members keep the very same table", () => {
  const before = assignBuckets([], ["a", "b"], 10);
  assert.deepEqual(assignBuckets(before, ["a", "b"], 10), before);
});
