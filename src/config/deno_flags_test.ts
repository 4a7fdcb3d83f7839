/** Which `deno run` flags take a value, and which are refused. */
import assert from "node:assert/strict";
import { denoFlagArity } from "./deno_flags.ts";

Deno.test("deno flags: arity of known flags, unknown ones undefined, refused ones throw", () => {
  assert.equal(denoFlagArity("--allow-net"), "optional");
  assert.equal(denoFlagArity("--allow-net=localhost"), "optional");
  assert.equal(denoFlagArity("--unstable-kv"), "none");
  assert.equal(denoFlagArity("--import-map"), "required");
  assert.equal(denoFlagArity("-A"), "none");
  assert.equal(denoFlagArity("--allow-everything"), undefined);
  assert.equal(denoFlagArity("-Z"), undefined);
  assert.throws(() => denoFlagArity("--hmr"), /not supported/);
});
