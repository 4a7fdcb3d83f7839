/**
 * Takes docs/dashboard.png (and docs/dashboard-dark.png): the dashboard of 4
 * workers under a little load, in headless Chromium (tests/browser.ts), while
 * a reload is under way: one reload done before, then an edit whose new
 * workers take 4 s to start, shot while they start.
 *
 *   deno run -A scripts/dashboard_screenshot.ts
 *
 * It starts everything it needs and stops it all (the instance, the load, the browser).
 */
import { freePort, Hotreload, httpGet, makeProject, runCli, waitFor } from "../tests/helpers.ts";
import { launchBrowser } from "../tests/browser.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const app = (version: number, delayMs: number) => `
${delayMs > 0 ? `await new Promise((resolve) => setTimeout(resolve, ${delayMs}));` : ""}
let served = 0;
Deno.serve((request) => {
  served++;
  if (served % 40 === 0) console.log(\`v${version}: \${served} requests served, last \${new URL(request.url).pathname}\`);
  return new Response("hello from v${version}\\n");
});
console.log("v${version} listening");
`;

const dir = await makeProject({ "main.ts": app(1, 0) });
const port = freePort();
const metricsPort = freePort();
const run = new Hotreload(
  [
    "run",
    "main.ts",
    "-N",
    "--port",
    String(port),
    "--workers",
    "4",
    "--metrics",
    String(metricsPort),
  ],
  dir,
);
const launched = await launchBrowser();
let loading = true;
try {
  await run.waitForReady(4);
  // A little load, uneven over time, so the charts have something to draw.
  const load = (async () => {
    let n = 0;
    while (loading) {
      n++;
      // A fresh connection each time, so the kernel spreads them over the workers.
      await httpGet(port, `/item/${n}`).catch(() => {});
      const pause = 15 + 25 * (1 + Math.sin(n / 60));
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  })();
  const page = await launched.page({ width: 1280, height: 1500 });
  await page.goto(`http://127.0.0.1:${metricsPort}/`, { waitUntil: "domcontentloaded" });
  await waitFor(() => page.$("#rows tr"), "rows");
  // Some history, then one reload done.
  await new Promise((resolve) => setTimeout(resolve, 40_000));
  const reload = await runCli(["reload"], dir);
  if (reload.code !== 0) throw new Error(`reload failed: ${reload.stderr}`);
  await new Promise((resolve) => setTimeout(resolve, 20_000));
  // The edit: its workers take 4 s to start; the shot is taken while they do.
  await Deno.writeTextFile(`${dir}/main.ts`, app(2, 4_000));
  await waitFor(
    () => page.$("#timeline li.running"),
    "the edit's reload on the timeline",
    20_000,
  );
  await waitFor(
    () => page.$$eval("#rows tr", (rows) => rows.length >= 8),
    "the new workers starting beside the old",
    10_000,
  );
  await page.screenshot({ path: `${ROOT}docs/dashboard.png`, fullPage: true });
  const dark = await launched.page({ dark: true, width: 1280, height: 1500 });
  await dark.goto(`http://127.0.0.1:${metricsPort}/`, { waitUntil: "domcontentloaded" });
  await waitFor(() => dark.$("#timeline li"), "the dark page's timeline");
  await dark.screenshot({ path: `${ROOT}docs/dashboard-dark.png`, fullPage: true });
  console.log(
    `docs/dashboard.png, docs/dashboard-dark.png; page errors: ${launched.errors.length}`,
  );
  for (const error of launched.errors) console.log(`  ${error}`);
  loading = false;
  await load;
} finally {
  loading = false;
  await launched.close();
  await run.cleanup();
  await Deno.remove(dir, { recursive: true });
}
