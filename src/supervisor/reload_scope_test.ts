/**
 * The rules that decide what a change reloads (reload_scope.ts), the worker
 * scripts found in a module's text (worker_scripts.ts) and the canonical
 * form paths are compared in (canonical.ts).
 */
import assert from "node:assert/strict";
import { canonicalSync } from "../watch/canonical.ts";
import { type ChangedFile, decideBatch, decideFile, type KindView } from "./reload_scope.ts";
import { workerScripts } from "./worker_scripts.ts";

const file = (path: string, facts: Partial<ChangedFile> = {}): ChangedFile => ({
  path,
  forms: [`/app/${path}`],
  module: /\.(ts|js|mjs)$/.test(path),
  exists: true,
  fresh: false,
  ...facts,
});

const workers = (files: string[], stale = false, dirs: string[] = []): KindView => ({
  files: new Set(files.map((f) => `/app/${f}`)),
  dirs,
  stale,
});
const queue = (files: string[], stale = false): KindView => ({
  process: "queue",
  files: new Set(files.map((f) => `/app/${f}`)),
  dirs: [],
  stale,
});

Deno.test("reload scope: each rule", () => {
  const current = [workers(["main.ts", "lib.ts"], false, ["/app/build"]), queue(["q.ts"])];
  const rule = (f: ChangedFile, kinds = current) => {
    const d = decideFile(f, kinds);
    return [d.rule, d.reloads];
  };
  assert.deepEqual(rule(file("settings.json")), ["not-a-module", "everything"]);
  assert.deepEqual(rule(file("build/mod.js", { forms: ["/app/build/mod.js"] })), [
    "named-dir",
    [undefined],
  ]);
  assert.deepEqual(rule(file("lib.ts")), ["graph", [undefined]]);
  assert.deepEqual(rule(file("q.ts")), ["graph", ["queue"]]);
  assert.deepEqual(rule(file("unused_test.ts")), ["not-imported", []]);
  assert.deepEqual(rule(file("old.ts", { exists: false })), ["gone", []]);
  // A link's target, or the link: any of the file's forms.
  assert.deepEqual(rule(file("../real/l.ts", { forms: ["/real/l.ts", "/app/lib.ts"] })), [
    "graph",
    [undefined],
  ]);
  // A process's `watch` directory is its own.
  const jobs: KindView = { process: "queue", files: new Set(), dirs: ["/app/jobs"], stale: false };
  assert.deepEqual(rule(file("jobs/a.js", { forms: ["/app/jobs/a.js"] }), [current[0], jobs]), [
    "named-dir",
    ["queue"],
  ]);
  // No graph yet: everything (but a worker dir needs none).
  const never: KindView[] = [{ files: undefined, dirs: ["/app/build"], stale: true }];
  assert.deepEqual(rule(file("lib.ts"), never), ["no-graphs", "everything"]);
  assert.deepEqual(rule(file("build/x.js", { forms: ["/app/build/x.js"] }), never), [
    "named-dir",
    [undefined],
  ]);

  // The workers' graph is being computed again: it still decides what it holds ...
  const recomputing = [workers(["main.ts", "lib.ts"], true), queue(["q.ts"])];
  assert.deepEqual(rule(file("lib.ts"), recomputing), ["last-graph", [undefined]]);
  // ... and a module it does not hold may be newly imported by the workers, not by the queue.
  assert.deepEqual(rule(file("extra.ts"), recomputing), ["maybe-new-import", [undefined]]);
  // A module of the queue's (current) graph may be newly imported by the (stale) workers too.
  assert.deepEqual(rule(file("q.ts"), recomputing), ["maybe-new-import", ["queue", undefined]]);
  // Gone: nothing can import it now.
  assert.deepEqual(rule(file("extra.ts", { exists: false }), recomputing), ["gone", []]);
  // Just created: decided again later (Vite's timestamp files are gone by then).
  assert.deepEqual(rule(file("vite.config.ts.timestamp-1-a.mjs", { fresh: true }), recomputing), [
    "wait-new",
    [],
  ]);
});

Deno.test("reload scope: a batch is the union of its files, and says which rules decided", () => {
  const kinds = [workers(["lib.ts"]), queue(["q.ts"])];
  const some = decideBatch([file("lib.ts"), file("q.ts"), file("t_test.ts")], kinds);
  assert.equal(some.kind, "some");
  assert.deepEqual(some.kind === "some" && [some.workers, some.processes], [true, ["queue"]]);
  assert.equal(
    some.why,
    "lib.ts, q.ts: in the module graph of the workers and queue (rule: graph); " +
      "t_test.ts: not imported by the app or any process (rule: not-imported)",
  );
  const nothing = decideBatch([file("t_test.ts")], kinds);
  assert.equal(nothing.kind, "nothing");
  assert.equal(nothing.why, "not imported by the app or any process (rule: not-imported)");
  assert.equal(decideBatch([file("lib.ts"), file("a.json")], kinds).kind, "everything");
  const waiting = decideBatch([file("x.mjs", { fresh: true })], [workers(["lib.ts"], true)]);
  assert.equal(waiting.kind, "nothing");
  assert.deepEqual(waiting.recheck, ["x.mjs"]);
});

Deno.test("worker scripts: the literal forms, resolved against the module", () => {
  const source = `
    const a = new Worker(new URL("./w.ts", import.meta.url), { type: "module" });
    const b = new Worker(
      new URL('../workers/b.js',
        import.meta.url).href, { type: "module" });
    const c = new Worker(import.meta.resolve(\`./c.ts\`), { type: "module" });
    const d = new Worker(new URL(\`./\${name}.ts\`, import.meta.url)); // computed: not found
    const e = new Worker(new URL("https://example.com/e.js", import.meta.url)); // remote
    const f = new Worker(import.meta.resolve("bare/worker")); // an import map's
  `;
  assert.deepEqual(workerScripts(source, "file:///app/src/main.ts"), [
    "/app/src/w.ts",
    "/app/workers/b.js",
    "/app/src/c.ts",
  ]);
  assert.deepEqual(workerScripts("export const x = 1;", "file:///app/m.ts"), []);
});

Deno.test("canonical paths: . and .. resolved, links followed, a missing tail kept", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hotreload-canonical-" }));
  try {
    await Deno.mkdir(`${dir}/real`);
    await Deno.mkdir(`${dir}/app`);
    await Deno.writeTextFile(`${dir}/real/l.ts`, "");
    await Deno.symlink("../real/l.ts", `${dir}/app/link.ts`);
    await Deno.symlink("../real", `${dir}/app/vendor`);
    assert.equal(canonicalSync("./../real/l.ts", `${dir}/app`), `${dir}/real/l.ts`);
    assert.equal(canonicalSync(`${dir}/app/link.ts`), `${dir}/real/l.ts`);
    assert.equal(canonicalSync("vendor/l.ts", `${dir}/app`), `${dir}/real/l.ts`);
    assert.equal(canonicalSync("vendor/gone/x.ts", `${dir}/app`), `${dir}/real/gone/x.ts`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
