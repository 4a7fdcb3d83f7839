/** The modules a compiled binary writes out for its children. */
import assert from "node:assert/strict";
import { RUNTIME_FILES } from "./runtime_modules.ts";

const RUNTIME = new URL("../runtime/", import.meta.url);

/** The relative modules `file` imports (static imports and re-exports), by name. */
function relativeImports(file: string): string[] {
  const source = Deno.readTextFileSync(new URL(file, RUNTIME));
  return [...source.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+"\.\/([^"]+)";/gms)]
    .map((match) => match[1]);
}

Deno.test("a compiled binary writes out every module the preloads import, and no other", () => {
  const reached = new Set<string>();
  const queue = ["worker_preload.ts", "process_preload.ts"];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (reached.has(file)) continue;
    reached.add(file);
    queue.push(...relativeImports(file));
  }
  // Had the pattern stopped matching, the walk would find the two preloads alone.
  assert.ok(reached.has("pool_server.ts"), "the walk followed the imports");
  assert.deepEqual([...RUNTIME_FILES].sort(), [...reached].sort());
});

Deno.test("the worker preload reads its handshake last: a warm spare evaluates the rest while it waits", () => {
  const imports = relativeImports("worker_preload.ts");
  assert.equal(imports.at(-1), "child_runtime.ts");
  assert.ok(imports.includes("deno_originals.ts"), "Deno.serve is read before the handshake");
  assert.ok(
    imports.includes("spare_warmup.ts"),
    "the timers and env permissions are met before it",
  );
});
