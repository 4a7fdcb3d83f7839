import assert from "node:assert/strict";
import { parseScaleTarget, scaledWorkers } from "./scale.ts";
import { UsageError } from "../../errors.ts";

Deno.test("scale: <n>, +n, -n and auto", () => {
  assert.deepEqual(parseScaleTarget("3"), { to: 3 });
  assert.deepEqual(parseScaleTarget("+2"), { by: 2 });
  assert.deepEqual(parseScaleTarget("-1"), { by: -1 });
  assert.deepEqual(parseScaleTarget("auto"), { auto: true });
  assert.equal(scaledWorkers({ by: 2 }, 4, 8), 6);
  assert.equal(scaledWorkers({ by: -1 }, 4, 8), 3);
  assert.equal(scaledWorkers({ auto: true }, 4, 8), 8);
  assert.equal(scaledWorkers({ to: 2 }, 4, 8), 2);
});

Deno.test("scale: out of bounds, one line each", () => {
  assert.throws(() => parseScaleTarget("two"), /scale needs a number of workers .*\(got "two"\)/);
  assert.throws(() => parseScaleTarget("+0"), UsageError);
  assert.throws(
    () => scaledWorkers({ by: -2 }, 2, 8),
    /^UsageError: cannot scale to 0 worker\(s\) \(2 - 2\): at least 1 must run$/,
  );
  assert.throws(() => scaledWorkers({ to: 0 }, 2, 8), /at least 1 must run/);
  assert.throws(() => scaledWorkers({ by: 1 }, 1024, 8), /at most 1024/);
});
