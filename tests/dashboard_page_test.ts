/**
 * The web dashboard in a real browser (headless Chromium, tests/browser.ts):
 * served where `--metrics` is, one row per worker with the pids `status
 * --json` reports, a reload seen live (the timeline gains an entry, the rows
 * change generation) without reloading the page, the app's hostile output
 * shown as text, keyboard navigation, and no console error; in Chromium and
 * Firefox ESR. Without a browser this fails, saying so.
 */
import assert from "node:assert/strict";
import { freePort, httpGet, runCli, waitFor, watchingArgs, withHotreload } from "./helpers.ts";
import { type BrowserKind, launchBrowser } from "./browser.ts";
import type { Page } from "puppeteer-core";

/** `expression` evaluated in the page (a string: this file is not typed against the DOM). */
function inPage<T>(page: Page, expression: string): Promise<T> {
  return page.evaluate(expression) as Promise<T>;
}

const HOSTILE = `<img src=x id=pwned onerror="document.title='pwned'">`;

const APP = `
console.log(${JSON.stringify(HOSTILE)});
Deno.serve(() => new Response("v1\\n"));
`;

type Status = { children: Array<{ role: string; pid: number; generation: number }> };

async function workerPids(dir: string): Promise<{ pid: number; generation: number }[]> {
  const result = await runCli(["status", "--json"], dir);
  assert.equal(result.code, 0, result.stderr);
  const status = JSON.parse(result.stdout) as Status;
  return status.children
    .filter((row) => row.role === "worker")
    .map(({ pid, generation }) => ({ pid, generation }))
    .sort((a, b) => a.pid - b.pid);
}

for (const kind of ["chromium", "firefox"] satisfies BrowserKind[]) {
  Deno.test(`dashboard page in ${kind}: live rows, a reload on the timeline without reloading the page, output as text`, () =>
    liveReload(kind));
}

async function liveReload(kind: BrowserKind): Promise<void> {
  const metricsPort = freePort();
  const launched = await launchBrowser(kind);
  try {
    await withHotreload(
      { "main.ts": APP },
      (port) => watchingArgs(port, "--workers", "2", "--metrics", String(metricsPort)),
      async (run, { dir }) => {
        await run.waitForReady(2);
        // /metrics is unchanged beside the page.
        const metrics = await httpGet(metricsPort, "/metrics");
        assert.equal(metrics.status, 200);
        assert.match(metrics.body, /^hotreload_build_info/m);

        const page = await launched.page();
        await page.goto(`http://127.0.0.1:${metricsPort}/`, { waitUntil: "domcontentloaded" });
        await inPage(page, "globalThis.marker = 41");
        const rowPids = () =>
          inPage<{ pid: number; generation: number }[]>(
            page,
            `[...document.querySelectorAll("#rows tr[data-role=worker]")].map((row) => ({
              pid: Number(row.dataset.pid),
              generation: Number(row.querySelector(".gen").textContent),
            })).sort((a, b) => a.pid - b.pid)`,
          );
        let shown = "";
        const rowsAre = async (expected: unknown) =>
          (shown = JSON.stringify(await rowPids())) === JSON.stringify(expected);
        const before = await workerPids(dir);
        assert.equal(before.length, 2);
        await waitFor(() => rowsAre(before), () => `rows ${shown} to be ${JSON.stringify(before)}`);
        assert.equal(await page.$eval("[data-fact=generation]", (e) => e.textContent), "1");
        assert.equal(await page.$$eval("#timeline li", (items) => items.length), 0);

        // The app's output is shown as the text it is, never as markup.
        await waitFor(
          () => page.$$eval("#lines .text", (t) => t.some((e) => e.textContent!.includes("<img"))),
          "the app's line on the page",
        );
        assert.equal(await page.$("#pwned"), null, "no element made of the app's output");
        assert.notEqual(await page.title(), "pwned");

        const reload = await runCli(["reload"], dir);
        assert.equal(reload.code, 0, reload.stderr);
        const after = await waitFor(async () => {
          const pids = await workerPids(dir);
          return pids.every((row) => row.generation === 2) && pids.length === 2 && pids;
        }, "status to report generation 2");
        await waitFor(() => rowsAre(after), () => `rows ${shown} to be ${JSON.stringify(after)}`);
        const entry = await waitFor(
          () =>
            inPage<null | { generation: string; trigger: string; text: string }>(
              page,
              `(() => {
                const items = document.querySelectorAll("#timeline li");
                return !(items.length === 1 && items[0].classList.contains("done")) ? null : {
                  generation: items[0].dataset.generation,
                  trigger: items[0].dataset.trigger,
                  text: items[0].textContent,
                };
              })()`,
            ),
          "the reload's entry on the timeline",
        );
        assert.equal(entry.generation, "2");
        assert.equal(entry.trigger, "reload");
        assert.match(entry.text, /hotreload reload/);
        assert.match(entry.text, /all responses new after \d+ ms/);
        assert.equal(
          await inPage(page, "globalThis.marker"),
          41,
          "the page was not reloaded",
        );

        // Keyboard: Tab reaches the sections.
        const focused: string[] = [];
        for (let i = 0; i < 12; i++) {
          await page.keyboard.press("Tab");
          focused.push(await inPage<string>(page, `document.activeElement?.id ?? ""`));
        }
        for (const id of ["children", "charts", "reloads", "output"]) {
          assert.ok(focused.includes(id), `Tab reaches #${id} (${focused.join(", ")})`);
        }
        await page.close();
        assert.deepEqual(launched.errors, [], "no console errors");
      },
    );
  } finally {
    await launched.close();
  }
}

Deno.test("dashboard page: dark and light mode follow prefers-color-scheme", async () => {
  const metricsPort = freePort();
  const launched = await launchBrowser();
  try {
    await withHotreload(
      { "main.ts": `Deno.serve(() => new Response("ok"));` },
      (port) => watchingArgs(port, "--no-watch", "--metrics", String(metricsPort)),
      async (run) => {
        await run.waitForReady(1);
        const background: string[] = [];
        for (const dark of [false, true]) {
          const page = await launched.page({ dark });
          await page.goto(`http://127.0.0.1:${metricsPort}/`, { waitUntil: "domcontentloaded" });
          await waitFor(() => page.$("#rows tr"), "a row");
          background.push(
            await inPage<string>(page, "getComputedStyle(document.body).backgroundColor"),
          );
          await page.close();
        }
        assert.deepEqual(background, ["rgb(255, 255, 255)", "rgb(13, 17, 23)"]);
        assert.deepEqual(launched.errors, []);
      },
    );
  } finally {
    await launched.close();
  }
});
