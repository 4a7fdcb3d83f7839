/** Tests of `hotreload monit`'s screen (monit.ts). */
import assert from "node:assert/strict";
import { drawMonit, sparkline } from "./monit.ts";
import { DashboardState } from "./state.ts";
import { processRow, statusReport, workerRow } from "./testing.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

Deno.test("monit: a sparkline is scaled to the busiest, blank where unknown, right-aligned", () => {
  assert.equal(sparkline([0, 5, 10], 3, 10), "▁▅█");
  assert.equal(sparkline([null, 10], 4, 20), "   ▅");
  assert.equal(sparkline([3, 3], 2, 0), "▁▁");
  assert.equal(sparkline([1, 2, 3, 4], 2, 4), "▆█");
});

Deno.test("monit: the screen has the instance, the last reload, a row per child with a sparkline per worker", () => {
  const state = new DashboardState();
  for (let second = 0; second <= 10; second++) {
    state.observe(
      statusReport([
        workerRow(0, 101, { requests: second * 10 }),
        workerRow(1, 102, { requests: second * 5 }),
        processRow("queue#0", 201),
      ]),
      T0 + second * 1000,
    );
  }
  state.reloadStarted({ generation: 2, reason: "change", files: ["main.ts"], at: T0 + 9000 });
  state.reloadEnded({ generation: 2, ok: true, message: "reloaded", at: T0 + 9400 });
  const lines = drawMonit(state.update(T0 + 10_000), 120);
  assert.match(lines[0], /^api · main\.ts · port 8000 · 2 worker\(s\) · generation 1/);
  assert.match(lines[2], /last reload: generation 2, change: done \(all new after 400 ms\)/);
  const header = lines.findIndex((line) => line.startsWith("ROLE"));
  assert.match(lines[header], /REQ\/S, LAST \d+ S \(max 10\.0\)/);
  const [w0, w1, p0] = lines.slice(header + 1, header + 4);
  assert.match(w0, /^worker\s+0\s+101\s+ready\s+1 .* 10\.0 .*█$/);
  assert.match(w1, /^worker\s+1\s+102\s+ready .* 5\.0 .*[▄▅]$/);
  assert.match(p0, /^process\s+queue#0\s+201\s+ready .* -$/, "no sparkline for a process");
  assert.equal(lines.at(-1), "q or Ctrl-C to leave");
  for (const line of drawMonit(state.update(T0 + 10_000), 40)) {
    assert.ok([...line].length <= 40, `fits 40 columns: ${line}`);
  }
});
