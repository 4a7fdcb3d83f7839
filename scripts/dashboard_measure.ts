/**
 * Measures what the dashboard costs and how fast it shows a reload:
 *
 * 1. The supervisor's CPU (utime + stime from /proc/<pid>/stat) over 60 s
 *    idle with no page open, then over 60 s with one page open (headless
 *    Chromium), 4 workers, no traffic, in one run.
 * 2. The latency from a reload's end (the time of the supervisor's
 *    `reload.done` log line, --log-format json) to the page showing it done
 *    (Date.now() in the page when the timeline's entry turns done, seen by a
 *    MutationObserver), over several `hotreload reload`s.
 *
 *   deno run -A scripts/dashboard_measure.ts [seconds per CPU phase, default 60] [reloads, default 8]
 */
import { freePort, Hotreload, makeProject, runCli, waitFor } from "../tests/helpers.ts";
import { launchBrowser } from "../tests/browser.ts";

const SECONDS = Number(Deno.args[0] ?? 60);
const RELOADS = Number(Deno.args[1] ?? 8);
const TICKS_PER_SECOND = 100;

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

async function cpuOver(pid: number, seconds: number): Promise<{ ms: number; percent: number }> {
  const before = cpuTicks(pid);
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const wall = (performance.now() - started) / 1000;
  const ms = ((cpuTicks(pid) - before) / TICKS_PER_SECOND) * 1000;
  return { ms, percent: (ms / 1000 / wall) * 100 };
}

const dir = await makeProject({ "main.ts": `Deno.serve(() => new Response("ok"));` });
const metricsPort = freePort();
const run = new Hotreload(
  [
    "run",
    "main.ts",
    "-N",
    "--port",
    String(freePort()),
    "--workers",
    "4",
    "--metrics",
    String(metricsPort),
    "--log-format",
    "json",
  ],
  dir,
);
const launched = await launchBrowser();
try {
  await run.waitForOutput(/"event":"supervisor.ready"/);
  const pid = run.pid;
  const idle = await cpuOver(pid, SECONDS);

  const page = await launched.page();
  await page.goto(`http://127.0.0.1:${metricsPort}/`, { waitUntil: "domcontentloaded" });
  await waitFor(() => page.$("#rows tr"), "the page's rows");
  await page.evaluate(`
    globalThis.doneSeen = {};
    new MutationObserver(() => {
      for (const item of document.querySelectorAll("#timeline li.done")) {
        globalThis.doneSeen[item.dataset.generation] ??= Date.now();
      }
    }).observe(document.getElementById("timeline"), { childList: true, subtree: true });
  `);
  const watched = await cpuOver(pid, SECONDS);

  const latencies: number[] = [];
  for (let i = 0; i < RELOADS; i++) {
    const result = await runCli(["reload"], dir);
    if (result.code !== 0) throw new Error(`reload failed: ${result.stderr}`);
    const generation = i + 2;
    const line = await waitFor(
      () =>
        run.output.lines.find((text) =>
          text.includes(`"event":"reload.done"`) && text.includes(`"generation":${generation}`)
        ),
      `reload.done of generation ${generation}`,
    );
    const endedAt = Date.parse(JSON.parse(line).time);
    const seen = await waitFor(
      () => page.evaluate(`globalThis.doneSeen["${generation}"]`) as Promise<number | undefined>,
      `the page to show generation ${generation} done`,
    );
    latencies.push(seen - endedAt);
    // Out of phase with the page's one-a-second updates, so the latencies sample that phase.
    await new Promise((resolve) => setTimeout(resolve, 1_300 + 250 * i));
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(`supervisor pid ${pid}, 4 workers, no traffic, ${SECONDS} s per phase`);
  console.log(
    `  no page open:  ${idle.ms.toFixed(0)} ms CPU (${idle.percent.toFixed(3)} % of a core)`,
  );
  console.log(
    `  one page open: ${watched.ms.toFixed(0)} ms CPU (${watched.percent.toFixed(3)} % of a core)`,
  );
  console.log(
    `reload end (reload.done log time) to the page showing it done, ${RELOADS} reloads: ` +
      `min ${sorted[0]} ms, median ${median} ms, max ${sorted.at(-1)} ms ` +
      `(each: ${latencies.join(", ")})`,
  );
  console.log(`page errors: ${launched.errors.length}`);
} finally {
  await launched.close();
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
