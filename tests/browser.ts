/**
 * A real browser for the dashboard's tests and its screenshot script:
 * Debian's Chromium or Firefox ESR (found or installed by outside.ts),
 * headless, driven by puppeteer-core (pinned in deno.json and deno.lock;
 * Chromium over CDP, Firefox over WebDriver BiDi).
 * `close()` ends the browser and every process it started (its process
 * group), and fails if any of them is left.
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { chromium, firefox } from "./outside.ts";
import { waitFor } from "./helpers.ts";

/** A launched browser, and how to end it with everything it started. */
export interface LaunchedBrowser {
  browser: Browser;
  /** The browser's own pid (the leader of its process group). */
  pid: number;
  /** Errors the pages reported (console.error, uncaught exceptions, failed requests). */
  errors: string[];
  /** A new page whose errors are collected in `errors`; its size and dark mode (chromium only) when asked. */
  page(options?: { dark?: boolean; width?: number; height?: number }): Promise<Page>;
  close(): Promise<void>;
}

/** The browsers the dashboard is tested in. */
export type BrowserKind = "chromium" | "firefox";

/** Launches a headless browser; fails with one line saying so when none can be had. */
export async function launchBrowser(kind: BrowserKind = "chromium"): Promise<LaunchedBrowser> {
  const executablePath = kind === "chromium" ? await chromium() : await firefox();
  const browser = await puppeteer.launch({
    browser: kind === "chromium" ? "chrome" : "firefox",
    executablePath,
    headless: true,
    // As root (CI, containers) Chromium refuses to start with its sandbox.
    args: kind === "chromium"
      ? ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
      : [],
    // Its own process group, so that close() can prove nothing of it is left.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
  });
  const pid = browser.process()?.pid;
  if (pid === undefined) throw new Error("puppeteer launched chromium but gave no pid");
  if (!groupMembers(pid).includes(pid)) {
    await browser.close();
    throw new Error(
      "chromium does not lead its own process group: its cleanup could not be proved",
    );
  }
  const errors: string[] = [];
  return {
    browser,
    pid,
    errors,
    async page({ dark = false, width = 1280, height = 900 } = {}) {
      const page = await browser.newPage();
      page.on("console", (message) => {
        if (message.type() === "error") errors.push(`console.error: ${message.text()}`);
      });
      page.on("pageerror", (error) => errors.push(`page error: ${(error as Error).message}`));
      page.on("requestfailed", (request) => {
        // The event stream is cut when the page closes: that is no error.
        if (!request.url().endsWith("/events")) {
          errors.push(`request failed: ${request.url()} ${request.failure()?.errorText}`);
        }
      });
      // Firefox ESR's WebDriver BiDi has neither (it keeps its window's size and the system's scheme).
      if (kind === "chromium") {
        await page.setViewport({ width, height });
        await page.emulateMediaFeatures([
          { name: "prefers-color-scheme", value: dark ? "dark" : "light" },
        ]);
      } else if (dark) {
        throw new Error("dark mode is emulated in chromium only");
      }
      return page;
    },
    async close() {
      try {
        await browser.close();
      } catch { /* gone already */ }
      let left: number[] = [];
      try {
        await waitFor(
          () => {
            left = groupMembers(pid);
            return left.length === 0;
          },
          "the browser's processes to exit",
          10_000,
        );
      } finally {
        for (const member of groupMembers(pid)) {
          try {
            Deno.kill(member, "SIGKILL");
          } catch { /* gone */ }
        }
      }
    },
  };
}

/** Live (not zombie) processes in process group `pgid`. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && Number(fields[2]) === pgid) members.push(Number(entry.name));
    } catch { /* gone */ }
  }
  return members;
}
