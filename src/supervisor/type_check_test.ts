/** --check: what `deno check` is given. */
import assert from "node:assert/strict";
import { checkArguments } from "./type_check.ts";

Deno.test("--check: deno check gets the entry and the flags that shape resolution", () => {
  assert.equal(checkArguments(["-A", "--import-map", "m.json"], "main.ts"), undefined);
  assert.deepEqual(
    checkArguments(
      ["-A", "--check", "--import-map", "m.json", "-c", "deno.json", "--unstable-kv", "--env-file"],
      "main.ts",
    ),
    ["--import-map", "m.json", "-c", "deno.json", "--unstable-kv", "main.ts"],
  );
  assert.deepEqual(checkArguments(["--check=all", "--lock=x.lock"], "a.ts"), [
    "--all",
    "--lock=x.lock",
    "a.ts",
  ]);
});
