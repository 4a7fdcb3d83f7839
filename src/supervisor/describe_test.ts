/** How a crash is worded. */
import assert from "node:assert/strict";
import { lastWords } from "./describe.ts";

Deno.test("the crash report starts at the first error among the last lines", () => {
  assert.deepEqual(
    lastWords([
      "booting",
      "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
      "    at file:///main.ts:1:7",
      "",
      "error: Type checking failed.",
      "",
      "Stack backtrace:",
      "   0: <unknown>",
    ]),
    [
      "TS2322 [ERROR]: Type 'string' is not assignable to type 'number'.",
      "    at file:///main.ts:1:7",
      "",
      "error: Type checking failed.",
    ],
  );
  assert.deepEqual(lastWords(["a", "b"]), ["a", "b"]);
});
