/**
 * The supervisor's Dashboard: status taken and output followed only while a
 * page is open; a page opened later catches up from the buffer; reload events
 * kept always. RecentLines: bounded, subscribers told of each line.
 */
import assert from "node:assert/strict";
import { type BufferedLine, Dashboard, type LineBuffer, RecentLines } from "./dashboard.ts";
import { serveDashboard, statusReport, workerRow } from "./testing.ts";

const SOURCE = { role: "worker" as const, id: 0, label: "worker 0", pid: 101 };
const line = (text: string): BufferedLine => ({ at: 1, stream: "stdout", source: SOURCE, text });

/** A RecentLines that counts its subscribers. */
class CountingLines extends RecentLines implements LineBuffer {
  subscribers = 0;
  override subscribe(listener: (line: BufferedLine) => void): () => void {
    this.subscribers++;
    const stop = super.subscribe(listener);
    return () => {
      this.subscribers--;
      stop();
    };
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("RecentLines keeps the last lines and tells its subscribers", () => {
  const lines = new RecentLines(3);
  const seen: string[] = [];
  const stop = lines.subscribe((l) => seen.push(l.text));
  for (const text of ["a", "b", "c", "d"]) lines.push(line(text));
  stop();
  lines.push(line("e"));
  assert.deepEqual(lines.lines(10).map((l) => l.text), ["c", "d", "e"]);
  assert.deepEqual(lines.lines(2).map((l) => l.text), ["d", "e"]);
  assert.deepEqual(lines.lines(0), []);
  assert.deepEqual(seen, ["a", "b", "c", "d"]);
});

Deno.test("Dashboard: no status and no subscription without a page; a page catches up and follows", async () => {
  const output = new CountingLines();
  let statusCalls = 0;
  const dashboard = new Dashboard({
    status: () => {
      statusCalls++;
      return statusReport([workerRow(0, 101)]);
    },
    output,
  });
  const served = serveDashboard(dashboard.server);
  try {
    output.push(line("before any page"));
    dashboard.reloadStarted({ generation: 2, reason: "SIGHUP", files: [] });
    dashboard.reloadEnded({ generation: 2, ok: true, message: "reloaded 1 worker" });
    assert.equal(statusCalls, 0);
    assert.equal(output.subscribers, 0);

    const conn = await Deno.connect({ hostname: "127.0.0.1", port: served.port });
    await conn.write(new TextEncoder().encode("GET /events HTTP/1.1\r\nhost: localhost\r\n\r\n"));
    let text = "";
    const reading = (async () => {
      const buffer = new Uint8Array(64 * 1024);
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) return;
        text += new TextDecoder().decode(buffer.subarray(0, n));
      }
    })();
    await until(() => text.includes("data: "), "the first update");
    assert.equal(output.subscribers, 1);
    output.push(line("while the page is open"));
    await until(() => text.includes("while the page is open"), "the new line in an update");
    const last = JSON.parse(text.trim().split("\n").at(-1)!.slice("data: ".length));
    assert.deepEqual(last.output.map((l: { text: string }) => l.text), [
      "before any page",
      "while the page is open",
    ]);
    assert.deepEqual(
      last.reloads.map((r: { trigger: string; outcome: string }) => [r.trigger, r.outcome]),
      [["SIGHUP", "done"]],
    );
    conn.close();
    await reading;
    await until(() => dashboard.server.clients === 0, "the page to leave");
    assert.equal(output.subscribers, 0, "the output is no longer followed");
    assert.equal(dashboard.server.scheduled, false);
  } finally {
    served.close();
  }
});
