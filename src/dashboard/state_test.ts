/** DashboardState without I/O: fed by hand, at times the test chooses. */
import assert from "node:assert/strict";
import {
  HISTORY_MS,
  MAX_LINE_CHARS,
  MAX_LINES,
  MAX_POINTS,
  MAX_RELOAD_FILES,
  MAX_RELOADS,
  MAX_SERIES,
  UPDATE_TYPE,
  UPDATE_VERSION,
} from "./contract.ts";
import { cleanText, DashboardState, triggerOf } from "./state.ts";
import { processRow, statusReport, workerRow } from "./testing.ts";

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);
const WORKER = { role: "worker" as const, id: 2, label: "worker 2", pid: 1234 };

Deno.test("dashboard state: no update before the first snapshot; then one self-describing message", () => {
  const state = new DashboardState();
  assert.equal(state.ready, false);
  assert.throws(() => state.update(T0), /before any observe/);
  state.observe(statusReport([workerRow(0, 101), processRow("queue#0", 201)]), T0);
  assert.equal(state.ready, true);
  const update = state.update(T0);
  assert.equal(update.type, UPDATE_TYPE);
  assert.equal(update.version, UPDATE_VERSION);
  assert.equal(update.at, T0);
  assert.equal(update.instance.name, "api");
  assert.deepEqual(update.children.map((row) => [row.role, row.pid]), [
    ["worker", 101],
    ["process", 201],
  ]);
  // One sample is no rate yet; a custom process never has one.
  assert.deepEqual(update.children.map((row) => row.requestsPerSecond), [null, null]);
  assert.deepEqual(update.history.series.map((s) => s.pid), [101], "workers only are charted");
  // It survives JSON as it is: no undefined, no NaN, nothing that is not data.
  assert.deepEqual(JSON.parse(JSON.stringify(update)), update);
});

Deno.test("dashboard state: requests/s over 5 s stays steady though counts arrive once a second out of phase", () => {
  const state = new DashboardState();
  // 10 requests/s, reported by the worker once a second at +0.98 s; sampled every
  // second at +0 s with ±30 ms of timer jitter, so a sample sometimes sees no report
  // since the last one and sometimes two.
  for (let second = 0; second <= 60; second++) {
    const jitter = [0, 30, -30, 25, -25][second % 5];
    const at = T0 + second * 1000 + jitter;
    const reported = Math.max(0, Math.floor((at - T0 - 980) / 1000) + 1) * 10;
    state.observe(statusReport([workerRow(0, 101, { requests: reported })]), at);
    const rate = state.update(at).children[0].requestsPerSecond;
    if (second === 0) assert.equal(rate, null, "one sample: no rate");
    if (second >= 6) {
      assert.ok(rate !== null && rate >= 7.9 && rate <= 12.1, `second ${second}: ${rate}/s`);
    }
  }
});

Deno.test("dashboard state: a series per worker process, 5 minutes long, at most MAX_POINTS and MAX_SERIES", () => {
  const state = new DashboardState();
  // Generation 1 (pids 101, 102) for 200 s, then generation 2 (pids 111, 112) for 200 s.
  for (let second = 0; second < 400; second++) {
    const generation = second < 200 ? 1 : 2;
    const pids = generation === 1 ? [101, 102] : [111, 112];
    state.observe(
      statusReport(pids.map((pid, id) => workerRow(id, pid, { generation, requests: second }))),
      T0 + second * 1000,
    );
  }
  const now = T0 + 399_000;
  const series = state.update(now).history.series;
  assert.deepEqual(series.map((s) => [s.pid, s.id, s.generation]), [
    [101, 0, 1],
    [102, 1, 1],
    [111, 0, 2],
    [112, 1, 2],
  ]);
  for (const s of series) {
    assert.ok(s.at[0] >= now - HISTORY_MS, "nothing older than the history");
    assert.equal(s.at.length, s.requestsPerSecond.length);
    assert.equal(s.at.length, s.rssBytes.length);
  }
  assert.equal(series[0].at.at(-1), T0 + 199_000, "the old process's line ends where it left");
  // Once its last sample is older than the history, the old generation's series goes.
  state.observe(statusReport([workerRow(0, 111), workerRow(1, 112)]), T0 + 200_000 + HISTORY_MS);
  assert.deepEqual(
    state.update(T0 + 200_000 + HISTORY_MS).history.series.map((s) => s.pid),
    [111, 112],
  );

  // Samples taken faster than once a second are kept, MAX_POINTS at most.
  const busy = new DashboardState();
  for (let i = 0; i < MAX_POINTS + 50; i++) {
    busy.observe(statusReport([workerRow(0, 101)]), T0 + i * 100);
  }
  assert.equal(busy.update(T0 + (MAX_POINTS + 50) * 100).history.series[0].at.length, MAX_POINTS);

  // Many workers: the table has them all, the charts the newest MAX_SERIES.
  const many = new DashboardState();
  const rows = Array.from({ length: MAX_SERIES + 8 }, (_, id) => workerRow(id, 1000 + id));
  many.observe(statusReport(rows), T0);
  const update = many.update(T0);
  assert.equal(update.children.length, MAX_SERIES + 8);
  assert.equal(update.history.series.length, MAX_SERIES);
});

Deno.test("dashboard state: the reload timeline, newest first, with trigger, files, time to all-new and outcome", () => {
  const state = new DashboardState();
  state.observe(statusReport([workerRow(0, 101)]), T0);
  state.reloadStarted({ generation: 2, reason: "change", files: ["main.ts"], at: T0 + 1000 });
  let [entry] = state.update(T0 + 1100).reloads;
  assert.deepEqual(entry, {
    generation: 2,
    trigger: "files",
    reason: "change",
    files: ["main.ts"],
    moreFiles: 0,
    startedAt: T0 + 1000,
    endedAt: null,
    allNewMs: null,
    outcome: "running",
    message: null,
  });
  state.reloadEnded({
    generation: 2,
    ok: true,
    message: "reloaded 1 worker in 312 ms",
    at: T0 + 1312,
  });
  [entry] = state.update(T0 + 1400).reloads;
  assert.equal(entry.outcome, "done");
  assert.equal(entry.allNewMs, 312);
  assert.equal(entry.endedAt, T0 + 1312);
  assert.equal(entry.message, "reloaded 1 worker in 312 ms");

  state.reloadStarted({ generation: 3, reason: "SIGHUP", files: [], at: T0 + 5000 });
  state.reloadEnded({
    generation: 3,
    ok: false,
    message: "reload aborted: worker 0 exited with exit code 1\nerror: Uncaught Error: boom",
    at: T0 + 5400,
  });
  // Refused before it began (a broken env file): never started, ended all the same.
  state.reloadEnded({
    generation: 3,
    ok: false,
    message: "reload aborted: .env:3: unterminated quote",
    at: T0 + 7000,
    reason: "reload command",
  });
  const reloads = state.update(T0 + 8000).reloads;
  assert.deepEqual(reloads.map((r) => [r.generation, r.trigger, r.outcome, r.allNewMs]), [
    [3, "reload", "aborted", null],
    [3, "SIGHUP", "aborted", null],
    [2, "files", "done", 312],
  ]);
  assert.equal(reloads[1].message, "reload aborted: worker 0 exited with exit code 1");

  // Many files: the first MAX_RELOAD_FILES, the rest counted.
  const files = Array.from({ length: MAX_RELOAD_FILES + 5 }, (_, i) => `src/m${i}.ts`);
  state.reloadStarted({ generation: 4, reason: "change", files, at: T0 + 9000 });
  const [many] = state.update(T0 + 9000).reloads;
  assert.equal(many.files.length, MAX_RELOAD_FILES);
  assert.equal(many.moreFiles, 5);

  // At most MAX_RELOADS entries: the oldest go.
  for (let g = 5; g < 5 + MAX_RELOADS; g++) {
    state.reloadStarted({
      generation: g,
      reason: "reload command",
      files: [],
      at: T0 + g * 10_000,
    });
    state.reloadEnded({ generation: g, ok: true, message: "done", at: T0 + g * 10_000 + 50 });
  }
  const bounded = state.update(T0 + 10_000_000).reloads;
  assert.equal(bounded.length, MAX_RELOADS);
  assert.equal(bounded[0].generation, 4 + MAX_RELOADS);
  assert.equal(bounded.at(-1)!.generation, 5);
});

Deno.test("dashboard state: triggers from the supervisor's reasons", () => {
  assert.equal(triggerOf("change", ["a.ts"]), "files");
  assert.equal(triggerOf("change, reload command", ["a.ts"]), "files");
  assert.equal(triggerOf("reload command", []), "reload");
  assert.equal(triggerOf("reload command, SIGHUP", []), "reload");
  assert.equal(triggerOf("SIGHUP", []), "SIGHUP");
  assert.equal(triggerOf("SIGUSR2", []), "SIGUSR2");
  assert.equal(triggerOf("takeover", []), "takeover");
  assert.equal(triggerOf("max-requests", []), "other");
});

Deno.test("dashboard state: a takeover and a succession join the timeline once, from the snapshots", () => {
  const state = new DashboardState();
  const tookOver = { pid: 900, version: "0.1.0", at: new Date(T0).toISOString(), afterMs: 1463 };
  const succeeded = {
    pid: 800,
    version: null,
    workers: 2,
    at: new Date(T0 - 60_000).toISOString(),
  };
  for (let i = 0; i < 3; i++) {
    state.observe(statusReport([workerRow(0, 101)], { tookOver, succeeded }), T0 + i * 1000);
  }
  const reloads = state.update(T0 + 3000).reloads;
  assert.deepEqual(reloads.map((r) => [r.trigger, r.startedAt, r.allNewMs, r.outcome]), [
    ["takeover", T0 - 1463, 1463, "done"],
    ["succession", T0 - 60_000, null, "done"],
  ]);
  assert.match(reloads[0].message!, /took over supervisor pid 900 \(hotreload 0\.1\.0\)/);
});

Deno.test("dashboard state: the last output lines, bounded, numbered, without terminal escapes, markup kept as text", () => {
  const state = new DashboardState();
  state.observe(statusReport([workerRow(2, 1234)]), T0);
  state.line(WORKER, "stdout", "\x1b[32mlistening\x1b[0m on :8000\r", T0);
  state.line(WORKER, "stderr", `<script>alert("pwned")</script><img src=x onerror=alert(1)>`, T0);
  state.line(WORKER, "stdout", "x".repeat(MAX_LINE_CHARS + 10), T0);
  let output = state.update(T0).output;
  assert.deepEqual(output.map((line) => [line.seq, line.source, line.stream]), [
    [1, "worker 2 1234", "stdout"],
    [2, "worker 2 1234", "stderr"],
    [3, "worker 2 1234", "stdout"],
  ]);
  assert.equal(output[0].text, "listening on :8000");
  assert.equal(output[1].text, `<script>alert("pwned")</script><img src=x onerror=alert(1)>`);
  assert.equal(output[2].cut, true);
  assert.equal(output[2].text.length, MAX_LINE_CHARS);
  for (let i = 0; i < MAX_LINES + 10; i++) state.line(WORKER, "stdout", `line ${i}`, T0 + i);
  output = state.update(T0 + 1000).output;
  assert.equal(output.length, MAX_LINES);
  assert.equal(output.at(-1)!.text, `line ${MAX_LINES + 9}`);
  assert.equal(output.at(-1)!.seq, MAX_LINES + 13);
});

Deno.test("dashboard state: cleanText removes escapes and controls, keeps tabs and every printable character", () => {
  assert.equal(cleanText("a\tb"), "a\tb");
  assert.equal(cleanText("\x1b]0;title\x07text"), "text");
  assert.equal(cleanText("\x1b[1;31mred\x1b[m \x1bMx\x00\x7f\x9b"), "red x");
  assert.equal(cleanText("héllo 世界 🎉 <b>&amp;</b>"), "héllo 世界 🎉 <b>&amp;</b>");
});

Deno.test("dashboard state: an update is a copy: what is fed later does not change it", () => {
  const state = new DashboardState();
  state.observe(statusReport([workerRow(0, 101)]), T0);
  state.reloadStarted({ generation: 2, reason: "change", files: ["a.ts"], at: T0 });
  state.line(WORKER, "stdout", "one", T0);
  const before = state.update(T0);
  const copy = structuredClone(before);
  state.observe(statusReport([workerRow(0, 101, { requests: 50 })]), T0 + 2000);
  state.reloadEnded({ generation: 2, ok: true, message: "done", at: T0 + 2000 });
  state.line(WORKER, "stdout", "two", T0 + 2000);
  assert.deepEqual(before, copy);
});
