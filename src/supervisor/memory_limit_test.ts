/** --max-memory: a worker is recycled once its memory stays above the limit, two samples in a row. */
import assert from "node:assert/strict";
import type { Child } from "../child/child.ts";
import { MemoryLimit } from "./memory_limit.ts";

const MB = 2 ** 20;

/** A limit over `workers`, whose memory the test sets; records what is marked for recycling. */
function setup(maxMemory: number | undefined, workers: Child[]) {
  const rss = new Map<Child, number>();
  const marked: string[] = [];
  const limit = new MemoryLimit(
    { maxMemory, memoryCheckInterval: 1000 },
    {
      usage: (child) =>
        rss.has(child) ? { rssBytes: rss.get(child)!, cpuPercent: 0, cpuSeconds: 0 } : undefined,
    },
    {
      serving: () => workers,
      markForRecycle: (child, reason) => marked.push(`${child.pid}: ${reason}`),
    },
  );
  return { limit, rss, marked };
}

const worker = (pid: number) => ({ pid }) as Child;

Deno.test("memory limit: recycled after two samples above it, not one; samples only when due", () => {
  const [a, b] = [worker(10), worker(11)];
  const { limit, rss, marked } = setup(100, [a, b]);
  rss.set(a, 150 * MB);
  rss.set(b, 50 * MB);
  limit.sample(0);
  assert.deepEqual(marked, [], "one sample above is a spike");
  assert.equal(limit.nextDeadline(), 1000);
  limit.sample(500);
  assert.deepEqual(marked, [], "not due yet");
  limit.sample(1000);
  assert.deepEqual(marked, ["10: uses 150 MB, above --max-memory 100 MB"]);
});

Deno.test("memory limit: a sample below starts the count again; a worker not sampled is skipped", () => {
  const [a, b] = [worker(10), worker(11)];
  const { limit, rss, marked } = setup(100, [a, b]);
  rss.set(a, 150 * MB);
  limit.sample(0);
  rss.set(a, 90 * MB);
  limit.sample(1000);
  rss.set(a, 150 * MB);
  limit.sample(2000);
  assert.deepEqual(marked, [], "above, below, above: never two in a row");
  limit.sample(3000);
  assert.equal(marked.length, 1);
});

Deno.test("memory limit: without --max-memory nothing is sampled, and no deadline", () => {
  const a = worker(10);
  const { limit, rss, marked } = setup(undefined, [a]);
  rss.set(a, 1e12);
  limit.sample(0);
  limit.sample(10_000);
  assert.deepEqual(marked, []);
  assert.equal(limit.nextDeadline(), Infinity);
});
