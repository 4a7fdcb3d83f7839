import assert from "node:assert/strict";
import { FailureMemory, worthReporting } from "./failures.ts";

const syntax = ["error: The module's source code could not be parsed: Expression expected"];
const boom = ["error: Uncaught (in promise) Error: boom"];

Deno.test("FailureMemory: the same error again counts up; another one starts at 1", () => {
  const memory = new FailureMemory();
  assert.equal(memory.record(syntax, 1), 1);
  assert.equal(memory.record(syntax, 1), 2);
  assert.equal(memory.record(boom, 1), 1);
  assert.equal(memory.record(boom, 1), 2);
});

Deno.test("FailureMemory: pids and timings in the output do not make an error new", () => {
  const memory = new FailureMemory();
  assert.equal(memory.record(["Error: boom", "pid 41 after 12 ms"], 1), 1);
  assert.equal(memory.record(["Error: boom", "pid 977 after 3 ms"], 1), 2);
});

Deno.test("FailureMemory: new code's failures count afresh; a worker still running the old code goes on counting the old run", () => {
  const memory = new FailureMemory();
  for (let i = 1; i <= 8; i++) assert.equal(memory.record(syntax, 1), i);
  memory.newCode(2);
  assert.equal(memory.signature, undefined);
  // The slot's retry that started just before the save, with the old code.
  assert.equal(memory.record(syntax, 1), 9, "the old code failing again is not news");
  // New code that fails the same way is shown: it is the first time for this code.
  assert.equal(memory.record(syntax, 2), 1);
  assert.equal(memory.record(syntax, 2), 2);
});

Deno.test("FailureMemory: an older worker's other error is the new code's (it may have read it)", () => {
  const memory = new FailureMemory();
  memory.record(syntax, 1);
  memory.newCode(2);
  assert.equal(memory.record(boom, 1), 1, "a new error is shown");
  assert.equal(memory.record(boom, 2), 2, "and counted as the new code's");
  assert.equal(memory.record(syntax, 1), 2, "the old error repeated still continues the old run");
});

Deno.test("FailureMemory: saved twice before the old worker failed, it still continues the old run", () => {
  const memory = new FailureMemory();
  memory.record(boom, 1);
  memory.record(boom, 1);
  memory.newCode(2);
  memory.newCode(3);
  assert.equal(memory.record(boom, 1), 3);
  assert.equal(memory.record(boom, 3), 1);
});

Deno.test("FailureMemory: code that failed, then newer code: the run before the failing code is let go", () => {
  const memory = new FailureMemory();
  memory.record(syntax, 1);
  memory.newCode(2);
  assert.equal(memory.record(boom, 2), 1, "generation 2 fails its own way");
  memory.newCode(3);
  assert.equal(memory.record(boom, 2), 2, "a generation-2 worker repeating it continues that run");
  assert.equal(memory.record(syntax, 1), 1, "generation 1's error, two codes back, is shown again");
});

Deno.test("worthReporting: the 1st, 2nd, 4th, 8th... time", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 8, 9, 16].map(worthReporting),
    [true, true, false, true, false, true, false, true],
  );
});
