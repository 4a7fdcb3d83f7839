/** Restart delays. */
import assert from "node:assert/strict";
import { Backoff } from "./backoff.ts";

Deno.test("backoff doubles from 100 ms, caps at 15 s, resets after 30 s of uptime", () => {
  const backoff = new Backoff();
  const delays = Array.from({ length: 10 }, () => backoff.failed(50));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 15000, 15000]);
  assert.equal(backoff.failed(30_000), 100, "a stable run forgets earlier failures");
  assert.equal(backoff.failed(10), 200);
});
