/**
 * The workers' records, as a successor reads them: nothing read back is
 * trusted. Run against this test's own process, whose pid and start time
 * are real, and which carries no instance's token.
 */
import assert from "node:assert/strict";
import { processStartTime } from "../child/os.ts";
import {
  deadTakeoverRecords,
  instanceToken,
  liveWorkers,
  newHopKey,
  recordedWorkers,
  removeTakeoverRecord,
  WORKERS_FILE,
  writeTakeoverRecord,
  writeWorkers,
} from "./worker_records.ts";

async function inDir(fn: (dir: string) => void | Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload_records_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("worker records: a hop secret is 128 random bits; the token is derived, never the secret", () => {
  const key = newHopKey();
  assert.match(key, /^[0-9a-f]{32}$/);
  assert.notEqual(newHopKey(), key);
  assert.match(instanceToken(key), /^[0-9a-f]{32}$/);
  assert.notEqual(instanceToken(key), key);
  assert.equal(instanceToken(key), instanceToken(key));
});

Deno.test("worker records: a forged, stale or foreign entry names no process", async () => {
  const self = { pid: Deno.pid, startTime: processStartTime(Deno.pid)! };
  assert.ok(self.startTime > 0);
  // This process is alive with that start time, but it is no worker of any instance.
  assert.deepEqual(liveWorkers([self], undefined), []);
  assert.deepEqual(liveWorkers([self], newHopKey()), []);
  for (
    const forged of [[{ pid: 1, startTime: 1 }], [{ pid: 0 }], [{ pid: -1, startTime: 5 }], {}]
  ) {
    assert.deepEqual(liveWorkers(forged, undefined), [], JSON.stringify(forged));
  }
  await inDir((dir) => {
    writeWorkers(dir, [self]);
    assert.ok(Deno.lstatSync(`${dir}/${WORKERS_FILE}`).isFile);
    assert.deepEqual(recordedWorkers(dir), []);
    Deno.writeTextFileSync(`${dir}/${WORKERS_FILE}`, "not json");
    assert.deepEqual(recordedWorkers(dir), []);
  });
});

Deno.test("worker records: a takeover's record counts once its supervisor is gone", async () => {
  await inDir((dir) => {
    const startTime = processStartTime(Deno.pid)!;
    writeTakeoverRecord(dir, { pid: Deno.pid, startTime, workers: [] });
    assert.deepEqual(deadTakeoverRecords(dir), [], "its supervisor (this process) lives");
    // The same pid with another start time: the recorded supervisor died, the pid was reused.
    writeTakeoverRecord(dir, { pid: Deno.pid, startTime: startTime + 1, workers: [] });
    assert.deepEqual(deadTakeoverRecords(dir).map((record) => record.pid), [Deno.pid]);
    // An insane record is no record.
    Deno.writeTextFileSync(`${dir}/takeover-${Deno.pid}.json`, JSON.stringify({ pid: 1 }));
    assert.deepEqual(deadTakeoverRecords(dir), []);
    removeTakeoverRecord(dir);
    assert.throws(() => Deno.lstatSync(`${dir}/takeover-${Deno.pid}.json`), Deno.errors.NotFound);
  });
});
