/**
 * Issue 38: a change to code a child runs always reloads it, and churn that
 * is not code reloads nothing (or the one reload it should).
 *
 * The layout corpus is one app that reaches its code every way the issue
 * lists (a `../` and a `./../x/` watch path, a module imported through a
 * symlink and edited at its target, a symlinked directory, a Web Worker's
 * script and its import, an import map alias, a workspace member, a dynamic
 * `import()` with a literal specifier, a git-ignored build directory named
 * with `--worker-dir`). Each file is edited once while the graphs are current
 * and once right after a reload, while they are being computed again, and
 * each edit must be served.
 *
 * The churn corpus counts the generations each kind of churn starts (Vite's
 * config timestamp files, editor swap and backup files, a test file, a build
 * that rewrites 200 files over 3 s), by editing a sentinel module after it:
 * the sentinel's reload is the last one, so whatever came before it was the
 * churn's.
 *
 * Real hotreload processes, real files; every wait is on an event with a
 * generous deadline, and no timing is asserted. The table of outcomes is
 * printed so a run on older code shows what it did.
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, waitFor } from "./helpers.ts";

/** One edit of the layout corpus. */
interface LayoutCase {
  name: string;
  /** Relative to the base directory (the app is `app/`). */
  file: string;
  /** The file's text for a token. */
  text(token: string): string;
}

const exported = (name: string) => (token: string) => `export const ${name} = "${token}";\n`;

const LAYOUT: LayoutCase[] = [
  { name: "../shared watch path", file: "shared/s.ts", text: exported("s") },
  { name: "./../other/ watch path", file: "other/o.ts", text: exported("o") },
  { name: "symlinked module, edited at its target", file: "real/l.ts", text: exported("l") },
  { name: "symlinked directory, edited at its target", file: "realdir/v.ts", text: exported("v") },
  {
    name: "worker script",
    file: "app/w.ts",
    text: (token) => `import { wl } from "./wlib.ts";\nself.postMessage(wl + "/" + "${token}");\n`,
  },
  { name: "worker script's import", file: "app/wlib.ts", text: exported("wl") },
  { name: "import map alias", file: "app/lib/a.ts", text: exported("a") },
  { name: "workspace member", file: "app/pkg/mod.ts", text: exported("p") },
  { name: "dynamic import() with a literal", file: "app/dyn.ts", text: exported("d") },
  { name: "git-ignored --worker-dir build", file: "app/build/mod.js", text: exported("b") },
];

/** Imported by the app: an edit of it is a reload, after which the graphs are computed again. */
const TICK: LayoutCase = { name: "tick", file: "app/tick.ts", text: exported("t") };

const MAIN = `import { s } from "../shared/s.ts";
import { o } from "../other/o.ts";
import { l } from "./link.ts";
import { v } from "./vendor/v.ts";
import { a } from "@lib/a.ts";
import { p } from "@corpus/pkg";
import { t } from "./tick.ts";
const { d } = await import("./dyn.ts");
// Computed: no static graph can see it; --worker-dir build names it.
const name = "mod.js";
const { b } = await import(\`./build/\${name}\`);
let w = "w?";
const worker = new Worker(new URL("./w.ts", import.meta.url), { type: "module" });
worker.onmessage = (event) => w = event.data;
Deno.serve(() => new Response([s, o, l, v, w, a, p, d, b, t].join(" ")));
`;

/** The base directory: `app/` (the project) beside the directories it reaches outside itself. */
async function makeLayout(): Promise<string> {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "hotreload-corpus-" }));
  const files: Record<string, string> = {
    "app/main.ts": MAIN,
    "app/deno.json": JSON.stringify({
      imports: { "@lib/": "./lib/" },
      workspace: ["./pkg"],
    }),
    "app/pkg/deno.json": JSON.stringify({
      name: "@corpus/pkg",
      version: "0.1.0",
      exports: "./mod.ts",
    }),
    "app/.gitignore": "build/\n",
    "app/tick.ts": TICK.text("tick@0"),
  };
  for (const c of LAYOUT) files[c.file] = c.text(`${c.file}@0`);
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${base}/${path.slice(0, path.lastIndexOf("/"))}`, { recursive: true });
    await Deno.writeTextFile(`${base}/${path}`, text);
  }
  await Deno.symlink("../real/l.ts", `${base}/app/link.ts`);
  await Deno.symlink("../realdir", `${base}/app/vendor`);
  return base;
}

/** The served body, or "" while nothing answers. */
async function served(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/`)).text();
  } catch {
    return "";
  }
}

/** What `status --json` says of the graphs, from the supervisor's own log-free view. */
async function graphsCurrent(dir: string): Promise<boolean> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, "status", "--json"],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  if (!out.success) return false;
  const report = JSON.parse(new TextDecoder().decode(out.stdout));
  const rows = report.children as Array<{ state: string }>;
  return report.supervisor.graphs?.current === true && !report.supervisor.reloading &&
    rows.every((row) => row.state === "ready" || row.state === "spare");
}

/** The log lines from `from` on that name `path` (relative to the app, as the watcher does). */
function linesAbout(run: Hotreload, from: number, path: string): string[] {
  return run.output.lines.slice(from).filter((line) => line.includes(path));
}

/** The app-relative path the watcher reports for a base-relative file. */
const reported = (file: string) => file.startsWith("app/") ? file.slice(4) : `../${file}`;

/** The rule a decision line names, if any. */
const ruleOf = (lines: string[]) =>
  lines.map((line) => line.match(/\(rule: ([a-z-]+)/)?.[1]).find((rule) => rule) ?? "-";

Deno.test("issue 38 layouts: every edit of code the app runs is served, with the graphs current and while they are computed again", async () => {
  const base = await makeLayout();
  const app = `${base}/app`;
  const port = freePort();
  const run = new Hotreload(
    ["run", "main.ts", "-N", "-R", "-w", "1", "--port", String(port)].concat(
      ["--watch", ".", "--watch", "../shared", "--watch", "./../other/", "--watch", "../real"],
      ["--watch", "../realdir", "--watch", "build", "--worker-dir", "build"],
    ),
    app,
  );
  const results: Array<{ phase: string; name: string; served: boolean; rule: string }> = [];
  /** Edits one file and waits until the edit is served, or until hotreload said it reloads nothing. */
  const edit = async (phase: string, c: LayoutCase) => {
    const token = `${c.file}@${phase}`;
    const from = run.output.lines.length;
    await Deno.writeTextFile(`${base}/${c.file}`, c.text(token));
    let ok = false;
    let skippedAt: number | undefined;
    try {
      await waitFor(
        async () => {
          if ((await served(port)).includes(token)) return ok = true;
          // Said "nothing to reload": give a late reload 2 s more, then count it lost.
          const skipped = linesAbout(run, from, reported(c.file))
            .some((line) => line.includes("nothing to reload"));
          if (skipped) skippedAt ??= Date.now();
          return skippedAt !== undefined && Date.now() - skippedAt > 2000;
        },
        `${c.name} (${phase}) served or skipped`,
        12_000,
      );
    } catch { /* never served, never said: lost */ }
    if (c !== TICK) {
      results.push({
        phase,
        name: c.name,
        served: ok,
        rule: ruleOf(linesAbout(run, from, "rule:")),
      });
    }
  };
  try {
    await run.waitForReady(1);
    await waitFor(async () => (await served(port)).includes("/app/w.ts@0"), "the first answer");
    for (const c of LAYOUT) {
      await waitFor(() => graphsCurrent(app), "the graphs current", 30_000, 100);
      await edit("current", c);
    }
    // Each edit right after a reload was served: the graphs are being computed again.
    for (const [i, c] of LAYOUT.entries()) {
      await edit(`reload-${i}`, TICK);
      await edit("recomputing", c);
    }
  } finally {
    console.log(
      results.map((r) =>
        `${r.served ? "served" : "LOST  "}  ${r.phase.padEnd(11)}  ${r.name}  (rule: ${r.rule})`
      ).join("\n"),
    );
    await run.cleanup();
    await Deno.remove(base, { recursive: true });
  }
  assert.deepEqual(results.filter((r) => !r.served).map((r) => `${r.phase}: ${r.name}`), []);
  assert.equal(run.output.has("never seen"), false, "every module the app runs is watched");
});

/** One kind of churn: what it does to the project, and how many reloads it may start. */
interface Churn {
  name: string;
  /** "current": the graphs are current first; "recomputing": right after a reload. */
  phase: "current" | "recomputing";
  act(dir: string): Promise<void>;
  /** The reloads it should start at most (and, with `exactly`, at least). */
  most: number;
  exactly?: boolean;
  /** A token the app must serve afterwards (the build's). */
  serves?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const hex = () => Math.random().toString(16).slice(2);

/** What Vite does with its config on every build (run by Deno, no node_modules): write, import, remove. */
async function viteTimestamps(dir: string, lifetimeMs: number): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const path = `${dir}/vite.config.ts.timestamp-${Date.now()}-${hex()}.mjs`;
    await Deno.writeTextFile(
      path,
      "var vite_config_default = {};\nexport { vite_config_default as default };\n",
    );
    await sleep(lifetimeMs);
    await Deno.remove(path);
    await sleep(100);
  }
}

/** Vim's and Emacs's files around a save, without the save itself. */
async function editorFiles(dir: string): Promise<void> {
  await Deno.writeTextFile(`${dir}/.lib.ts.swp`, "b0VIM 9.0");
  for (let i = 0; i < 3; i++) await Deno.writeTextFile(`${dir}/.lib.ts.swp`, `b0VIM ${i}`);
  await Deno.writeTextFile(`${dir}/4913`, "");
  await Deno.remove(`${dir}/4913`);
  await Deno.writeTextFile(`${dir}/.lib.ts.swx`, "");
  await Deno.remove(`${dir}/.lib.ts.swx`);
  await Deno.copyFile(`${dir}/lib.ts`, `${dir}/lib.ts~`);
  await Deno.symlink("user@host.1234:1700000000", `${dir}/.#lib.ts`);
  await sleep(100);
  await Deno.remove(`${dir}/.#lib.ts`);
  await Deno.remove(`${dir}/.lib.ts.swp`);
}

/** A test file, written and edited: imported by nothing the app runs. */
async function testFile(dir: string): Promise<void> {
  const path = `${dir}/lib_${hex()}_test.ts`;
  await Deno.writeTextFile(path, `import { lib } from "./lib.ts";\nDeno.test("lib", () => {});\n`);
  await sleep(100);
  await Deno.writeTextFile(
    path,
    `import { lib } from "./lib.ts";\nDeno.test("lib 2", () => {});\n`,
  );
}

/** A build that rewrites 200 files of the git-ignored build/ over 3 s, its entry last. */
async function build(dir: string, token: string): Promise<void> {
  for (let i = 0; i < 199; i++) {
    await Deno.writeTextFile(`${dir}/build/chunks/c${i}.js`, `export const c = "${token}-${i}";\n`);
    await sleep(15);
  }
  await Deno.writeTextFile(`${dir}/build/mod.js`, `export const b = "${token}";\n`);
}

const CHURN: Churn[] = [
  ...(["current", "recomputing"] as const).flatMap((phase): Churn[] => [
    { name: "Vite timestamp files (5 ms each)", phase, act: (d) => viteTimestamps(d, 5), most: 0 },
    {
      name: "Vite timestamp files (150 ms each)",
      phase,
      act: (d) => viteTimestamps(d, 150),
      most: 0,
    },
    // While the workers' graph is computed again, a module in no graph that exists may be
    // newly imported by them (rule maybe-new-import): one reload, never more.
    { name: "a test file", phase, act: testFile, most: phase === "current" ? 0 : 1 },
  ]),
  { name: "editor swap and backup files", phase: "current", act: editorFiles, most: 0 },
  {
    name: "a build rewriting 200 files over 3 s",
    phase: "current",
    act: (d) => build(d, "build-1"),
    most: 1,
    exactly: true,
    serves: "build-1",
  },
];

Deno.test("issue 38 churn: temporary, editor, test and build files start at most the one reload each should", async () => {
  const files: Record<string, string> = {
    "main.ts": `import { lib } from "./lib.ts";
const name = "mod.js";
const { b } = await import(\`./build/\${name}\`);
Deno.serve(() => new Response(\`\${lib} \${b}\`));
`,
    "lib.ts": `export const lib = "lib@0";\n`,
    "vite.config.ts": `export default {};\n`,
    ".gitignore": "build/\n",
    "build/mod.js": `export const b = "build-0";\n`,
  };
  for (let i = 0; i < 199; i++) files[`build/chunks/c${i}.js`] = `export const c = "${i}";\n`;
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hotreload-churn-" }));
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${path.slice(0, path.lastIndexOf("/") + 1)}`, { recursive: true });
    await Deno.writeTextFile(`${dir}/${path}`, text);
  }
  const port = freePort();
  const run = new Hotreload(
    ["run", "main.ts", "-N", "-R", "-w", "1", "--port", String(port), "--worker-dir", "build"],
    dir,
  );
  const results: Array<{ churn: Churn; reloads: number; aborted: number; served: boolean }> = [];
  try {
    await run.waitForReady(1);
    await waitFor(async () => (await served(port)).includes("lib@0"), "the first answer");
    for (const [i, churn] of CHURN.entries()) {
      if (churn.phase === "current") {
        await waitFor(() => graphsCurrent(dir), "the graphs current", 30_000, 100);
      }
      const from = run.output.lines.length;
      await churn.act(dir);
      const ok = churn.serves === undefined ||
        await waitFor(async () => (await served(port)).includes(churn.serves!), churn.name, 15_000)
          .catch(() => false);
      // Whatever the churn was to start has started once a later decision could come (the
      // files it left are decided again 250 ms after they appeared): then the sentinel.
      await sleep(600);
      const sentinel = `lib@churn-${i}`;
      await Deno.writeTextFile(`${dir}/lib.ts`, `export const lib = "${sentinel}";\n`);
      await waitFor(
        async () => (await served(port)).includes(sentinel),
        `${sentinel} served`,
        20_000,
      );
      const lines = run.output.lines.slice(from);
      const starts = lines.filter((line) => /: reloading .* to generation \d+/.test(line)).length;
      const aborted = lines.filter((line) => line.includes("reload aborted")).length;
      // The sentinel's own reload is the last one.
      results.push({ churn, reloads: starts - 1, aborted, served: ok === true });
      if (starts - 1 > churn.most) {
        console.log(
          `${churn.name}:\n${lines.filter((line) => line.includes("changed")).join("\n")}`,
        );
      }
    }
  } finally {
    console.log(
      results.map(({ churn, reloads, aborted, served }) =>
        `${String(reloads).padStart(2)} reload(s), ${aborted} aborted${
          churn.serves ? (served ? ", served" : ", NOT SERVED") : ""
        }  ${churn.phase.padEnd(11)}  ${churn.name}  (should: ${
          churn.exactly ? "" : "at most "
        }${churn.most})`
      ).join("\n"),
    );
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
  const wrong = results.filter(({ churn, reloads, aborted, served }) =>
    reloads > churn.most || (churn.exactly && reloads < churn.most) || aborted > 0 || !served
  );
  assert.deepEqual(wrong.map((r) => `${r.churn.phase}: ${r.churn.name}: ${r.reloads}`), []);
});
