/** Memory and CPU of a child from /proc/<pid>/stat (a fake one here). */
import assert from "node:assert/strict";
import type { Child } from "../child/child.ts";
import { UsageSampler } from "./sampler.ts";

/** /proc/<pid>/stat's fields from the state on, with utime, stime and rss (pages) set. */
function stat(utime: number, stime: number, rssPages: number): string[] {
  const fields = Array.from({ length: 40 }, () => "0");
  fields[0] = "S";
  fields[11] = String(utime);
  fields[12] = String(stime);
  fields[21] = String(rssPages);
  return fields;
}

Deno.test("sampler: RSS from pages, CPU % between two samples of the same child", () => {
  let now = 0;
  let proc: string[] | undefined = stat(50, 50, 1000);
  const sampler = new UsageSampler(() => proc, () => now);
  const child = { pid: 1234, startedAt: 0 } as Child;
  now = 2000;
  // 100 ticks (1 s of CPU) over its first 2 s: 50 %.
  assert.deepEqual(sampler.sample(child), {
    rssBytes: 1000 * 4096,
    cpuPercent: 50,
    cpuSeconds: 1,
  });
  proc = stat(100, 100, 2000);
  now = 3000;
  // 100 more ticks in 1 s: a whole core.
  assert.equal(sampler.sample(child)?.cpuPercent, 100);
  proc = undefined;
  assert.equal(sampler.sample(child), undefined, "gone");
});
