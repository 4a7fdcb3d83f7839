import assert from "node:assert/strict";
import { isOwnFrame } from "./own_frames.ts";

const BASE = "file:///opt/hotreload/src/runtime/";

Deno.test("own frames: a frame in the runtime modules is hotreload's; the app's are not", () => {
  assert.ok(isOwnFrame(`    at Server.<anonymous> (${BASE}node_servers.ts:120:9)`, BASE));
  assert.ok(isOwnFrame(`    at ${BASE}worker_preload.ts:10:3`, BASE));
  assert.ok(!isOwnFrame("    at file:///app/main.ts:3:9", BASE));
  // An app with its own src/runtime/ is not hotreload.
  assert.ok(!isOwnFrame("    at file:///app/src/runtime/node_servers.ts:3:9", BASE));
  // Not a frame: a line that names the file is shown.
  assert.ok(!isOwnFrame(`loading ${BASE}node_servers.ts`, BASE));
});
