/** `hotreload run`'s argument splitting. */
import assert from "node:assert/strict";
import { splitRunArgv } from "./run_args.ts";

Deno.test("run arguments: options and Deno flags on both sides of the entry, app args after --", () => {
  const split = splitRunArgv([
    "-A",
    "--import-map",
    "map.json",
    "main.ts",
    "--workers",
    "4",
    "--env-file=.env",
    "-c",
    "deno.json",
    "-p8000",
    "--",
    "--workers",
    "x",
  ]);
  assert.equal(split.entry, "main.ts");
  // Values are attached, so "-1" reaches our range check as a value.
  assert.deepEqual(split.ours, ["--workers=4", "-p8000"]);
  assert.deepEqual(split.denoFlags, [
    "-A",
    "--import-map",
    "map.json",
    "--env-file=.env",
    "-c",
    "deno.json",
  ]);
  assert.deepEqual(split.appArgs, ["--workers", "x"]);
});
