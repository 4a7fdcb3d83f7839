/**
 * Watcher tests: one behaviour suite run against every backend (inotify
 * events, polling with the statx probe, polling with the pure-Deno probe),
 * the backend choice as it is made, the poller's descriptors and rounds, and
 * what is never seen. The pure pieces' tests (backend choice, filter,
 * coalescing, probes) are beside their modules in src/watch/.
 *
 * No fixed sleeps: every wait polls a condition with a deadline. "Nothing
 * else happened" is shown by making the ignored change first, then a real
 * one, and asserting that the next batch holds only the real one.
 */
import assert from "node:assert/strict";
import { createWatcherWith, type InternalWatcher, type WatcherDeps } from "../src/watch/create.ts";
import { createWatcher } from "../src/watch/mod.ts";
import { StatProber, StatxProber } from "../src/watch/probe.ts";
import type { Change, ChangeBatch, WatchOptions } from "../src/watch/mod.ts";

// ---------------------------------------------------------------- helpers

async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  { timeoutMs = 5000, intervalMs = 10, what = "condition" } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await predicate())) {
    if (performance.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * A `Deno.watchFs` that yields the events a test sends; `send` resolves once
 * the backend took them all (it handles each as it is yielded).
 */
function scriptedWatchFs() {
  const events: Deno.FsEvent[] = [];
  let wake = () => {};
  let closed = false;
  let idle = false;
  const watchFs = (): Deno.FsWatcher => ({
    close: () => {
      closed = true;
      wake();
    },
    [Symbol.dispose]() {},
    async *[Symbol.asyncIterator]() {
      while (!closed) {
        if (events.length === 0) {
          idle = true;
          await new Promise<void>((resolve) => wake = resolve);
        }
        while (events.length > 0) yield events.shift()!;
      }
    },
  } as unknown as Deno.FsWatcher);
  const send = async (...batch: Deno.FsEvent[]) => {
    idle = false;
    events.push(...batch);
    wake();
    await waitFor(() => idle, { what: "the scripted events handled" });
  };
  return { watchFs, send };
}

class Recorder {
  batches: ChangeBatch[] = [];
  #cursor = 0;
  onBatch = (b: ChangeBatch): void => {
    this.batches.push(b);
  };

  /** The next batch not yet consumed. */
  async next(what = "a batch", timeoutMs = 5000): Promise<Change[]> {
    await waitFor(() => this.batches.length > this.#cursor, { timeoutMs, what });
    return this.batches[this.#cursor++].changes;
  }

  get pending(): number {
    return this.batches.length - this.#cursor;
  }
}

/**
 * events: Deno.watchFs. poll-statx: statx through held descriptors (a local
 * disk). poll-statx-byname: statx by name (what a network mount gets).
 * poll-stat: the pure-Deno probe (no FFI).
 */
type BackendName = "events" | "poll-statx" | "poll-statx-byname" | "poll-stat";

const BACKENDS: BackendName[] = ["events", "poll-statx", "poll-statx-byname", "poll-stat"];
const POLL_MS = 50;
const DEBOUNCE_MS = 100;

interface Env {
  dir: string;
  rec: Recorder;
  watcher: InternalWatcher;
  write(rel: string, text?: string): void;
  append(rel: string, text?: string): void;
  rm(rel: string): void;
  mkdir(rel: string): void;
  abs(rel: string): string;
}

async function withWatcher(
  backend: BackendName,
  opts: Partial<WatchOptions> & { setup?: (dir: string) => void | Promise<void>; rootSub?: string },
  body: (env: Env) => Promise<void>,
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const rec = new Recorder();
  let watcher: InternalWatcher | undefined;
  try {
    const root = opts.rootSub ? `${dir}/${opts.rootSub}` : dir;
    Deno.mkdirSync(root, { recursive: true });
    await opts.setup?.(root);
    const deps: WatcherDeps = backend === "poll-stat"
      ? { prober: new StatProber() }
      : backend === "poll-statx-byname"
      ? {
        systemInfo: () => ({
          mounts: `/dev/vda / ext4 rw 0 0\nsrv:/x ${dir} nfs4 rw 0 0\n`,
          osRelease: "",
        }),
      }
      : {};
    watcher = await createWatcherWith({
      root,
      debounceMs: DEBOUNCE_MS,
      ...opts,
      poll: backend === "events" ? { mode: "never" } : { mode: "force", intervalMs: POLL_MS },
      onBatch: rec.onBatch,
    }, deps);
    assert.equal(watcher.backend, backend === "events" ? "events" : "poll");
    if (backend === "poll-statx" || backend === "poll-statx-byname") {
      assert.equal(watcher.prober, "statx");
      const held = watcher.pollStats!().heldFiles;
      assert.ok(backend === "poll-statx" ? held > 0 : held === 0, `held: ${held}`);
    }
    if (backend === "poll-stat") assert.equal(watcher.prober, "stat");
    const abs = (rel: string) => `${root}/${rel}`;
    await body({
      dir: root,
      rec,
      watcher,
      abs,
      write: (rel, text = "x") => Deno.writeTextFileSync(abs(rel), text),
      append: (rel, text = "y") => Deno.writeTextFileSync(abs(rel), text, { append: true }),
      rm: (rel) => Deno.removeSync(abs(rel), { recursive: true }),
      mkdir: (rel) => Deno.mkdirSync(abs(rel), { recursive: true }),
    });
    // Nothing else was coming: the next batch is exactly a sentinel written now
    // (an extra batch still on its way would arrive first).
    const sentinel = `${opts.paths?.[0] ?? "."}/zz-sentinel.ts`.replace(/^\.\//, "");
    Deno.writeTextFileSync(`${root}/${sentinel}`, "x");
    assert.deepEqual(await rec.next(), [added(sentinel)], "unexpected extra batch");
    assert.equal(rec.pending, 0, `unexpected extra batch: ${JSON.stringify(rec.batches.at(-1))}`);
  } finally {
    await watcher?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

const added = (path: string): Change => ({ path, kind: "added" });
const changed = (path: string): Change => ({ path, kind: "changed" });
const removed = (path: string): Change => ({ path, kind: "removed" });

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  assert.ok(out.success, `${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
}

// ---------------------------------------------------------------- behaviour suite, per backend

for (const backend of BACKENDS) {
  Deno.test(`watch behaviour: ${backend}`, async (t) => {
    const seed = (dir: string) => {
      Deno.writeTextFileSync(`${dir}/a.ts`, "export const a = 1;\n");
      Deno.mkdirSync(`${dir}/src`);
      Deno.writeTextFileSync(`${dir}/src/b.ts`, "export const b = 1;\n");
    };

    await t.step("create", () =>
      withWatcher(backend, { setup: seed }, async (e) => {
        e.write("new.ts");
        assert.deepEqual(await e.rec.next(), [added("new.ts")]);
      }));

    await t.step(
      "in-place edit (append) and same-size rewrite",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.append("a.ts", "// more\n");
          assert.deepEqual(await e.rec.next(), [changed("a.ts")]);
          // Same size, same second: only mtime nanoseconds / ctime tell it apart.
          const fd = Deno.openSync(e.abs("a.ts"), { write: true });
          fd.writeSync(new TextEncoder().encode("E"));
          fd.close();
          assert.deepEqual(await e.rec.next(), [changed("a.ts")]);
        }),
    );

    await t.step(
      "atomic save (temp file renamed over)",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.write("a.ts.4f2a9c", "export const a = 2;\n");
          Deno.renameSync(e.abs("a.ts.4f2a9c"), e.abs("a.ts"));
          e.write("src/b.ts.tmp", "export const b = 2;\n");
          Deno.renameSync(e.abs("src/b.ts.tmp"), e.abs("src/b.ts"));
          assert.deepEqual(await e.rec.next(), [changed("a.ts"), changed("src/b.ts")]);
        }),
    );

    await t.step("sed -i", () =>
      withWatcher(backend, { setup: seed }, async (e) => {
        await run("sed", ["-i", "s/1/3/", "src/b.ts"], e.dir);
        assert.deepEqual(await e.rec.next(), [changed("src/b.ts")]);
        assert.equal(Deno.readTextFileSync(e.abs("src/b.ts")), "export const b = 3;\n");
      }));

    await t.step(
      "vim save: 4913 probe, backup file~, new file",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.write("src/4913", "");
          e.rm("src/4913");
          Deno.renameSync(e.abs("src/b.ts"), e.abs("src/b.ts~"));
          e.write("src/b.ts", "export const b = 4;\n");
          e.rm("src/b.ts~");
          assert.deepEqual(await e.rec.next(), [changed("src/b.ts")]);
        }),
    );

    await t.step("delete", () =>
      withWatcher(backend, { setup: seed }, async (e) => {
        e.rm("src/b.ts");
        assert.deepEqual(await e.rec.next(), [removed("src/b.ts")]);
      }));

    await t.step(
      "rename a file, rename a directory",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          Deno.renameSync(e.abs("a.ts"), e.abs("src/z.ts"));
          assert.deepEqual(await e.rec.next(), [removed("a.ts"), added("src/z.ts")]);
          Deno.renameSync(e.abs("src"), e.abs("lib"));
          assert.deepEqual(await e.rec.next(), [
            added("lib/b.ts"),
            added("lib/z.ts"),
            removed("src/b.ts"),
            removed("src/z.ts"),
          ]);
        }),
    );

    await t.step(
      "a directory replaced by a new one of the same name",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.rm("src");
          e.mkdir("src/inner");
          e.write("src/b.ts", "new b");
          e.write("src/inner/c.ts");
          assert.deepEqual(await e.rec.next(), [changed("src/b.ts"), added("src/inner/c.ts")]);
          e.append("src/inner/c.ts");
          assert.deepEqual(await e.rec.next(), [changed("src/inner/c.ts")]);
        }),
    );

    await t.step(
      "file in a new subdirectory at depth, then more there",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.mkdir("x/y/z/w");
          e.write("x/y/z/w/deep.ts");
          assert.deepEqual(await e.rec.next(), [added("x/y/z/w/deep.ts")]);
          e.write("x/y/z/later.ts");
          e.append("x/y/z/w/deep.ts");
          assert.deepEqual(await e.rec.next(), [
            added("x/y/z/later.ts"),
            changed("x/y/z/w/deep.ts"),
          ]);
        }),
    );

    await t.step(
      "directory moved in from outside, and out again",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          const outside = Deno.makeTempDirSync({ prefix: "hrwatch-outside-" });
          try {
            Deno.mkdirSync(`${outside}/pkg/inner`, { recursive: true });
            Deno.writeTextFileSync(`${outside}/pkg/inner/m.ts`, "1");
            Deno.writeTextFileSync(`${outside}/pkg/n.js`, "1");
            Deno.renameSync(`${outside}/pkg`, e.abs("pkg"));
            assert.deepEqual(await e.rec.next(), [added("pkg/inner/m.ts"), added("pkg/n.js")]);
            e.append("pkg/inner/m.ts");
            assert.deepEqual(await e.rec.next(), [changed("pkg/inner/m.ts")]);
            Deno.renameSync(e.abs("pkg"), `${outside}/gone`);
            assert.deepEqual(await e.rec.next(), [removed("pkg/inner/m.ts"), removed("pkg/n.js")]);
          } finally {
            Deno.removeSync(outside, { recursive: true });
          }
        }),
    );

    await t.step(
      "100 files at once are one batch",
      () =>
        withWatcher(backend, { setup: seed, debounceMs: 50 }, async (e) => {
          e.mkdir("many");
          const want: Change[] = [];
          for (let i = 0; i < 100; i++) {
            const rel = `many/f${String(i).padStart(3, "0")}.ts`;
            e.write(rel, `export const v${i} = ${i};\n`);
            want.push(added(rel));
          }
          assert.deepEqual(await e.rec.next(), want);
        }),
    );

    await t.step(
      "extensions: only --ext files count",
      () =>
        withWatcher(backend, { setup: seed, extensions: ["ts", ".md"] }, async (e) => {
          e.write("notes.txt");
          e.write("data.json");
          e.write("readme.md");
          e.write("c.ts");
          assert.deepEqual(await e.rec.next(), [added("c.ts"), added("readme.md")]);
        }),
    );

    await t.step("--ignore globs", () =>
      withWatcher(
        backend,
        { setup: seed, ignore: ["gen/", "*.test.ts", "src/private/**"] },
        async (e) => {
          e.mkdir("gen/deep");
          e.write("gen/deep/x.ts");
          e.write("gen/y.ts");
          e.write("a.test.ts");
          e.mkdir("src/private");
          e.write("src/private/p.ts");
          e.write("src/ok.ts");
          assert.deepEqual(await e.rec.next(), [added("src/ok.ts")]);
        },
      ));

    await t.step(".gitignore files, root and nested, with negation", () =>
      withWatcher(backend, {
        setup: (dir) => {
          seed(dir);
          Deno.writeTextFileSync(`${dir}/.gitignore`, "dist/\n*.gen.ts\n!keep.gen.ts\n");
          Deno.mkdirSync(`${dir}/dist`);
          Deno.writeTextFileSync(`${dir}/src/.gitignore`, "local.ts\ncache/\n");
        },
      }, async (e) => {
        e.write("dist/out.js");
        e.write("x.gen.ts");
        e.write("src/local.ts");
        e.mkdir("src/cache");
        e.write("src/cache/c.ts");
        e.write("local.ts"); // only ignored below src/
        e.write("keep.gen.ts"); // re-included by the negation
        assert.deepEqual(await e.rec.next(), [added("keep.gen.ts"), added("local.ts")]);
      }));

    await t.step("gitignore: false watches ignored paths", () =>
      withWatcher(backend, {
        gitignore: false,
        setup: (dir) => {
          seed(dir);
          Deno.writeTextFileSync(`${dir}/.gitignore`, "dist/\n");
          Deno.mkdirSync(`${dir}/dist`);
        },
      }, async (e) => {
        e.write("dist/out.js");
        assert.deepEqual(await e.rec.next(), [added("dist/out.js")]);
      }));

    await t.step(
      "a file removed and written again 150 ms later (a build emptying its output) is one change",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.rm("a.ts");
          await new Promise((resolve) => setTimeout(resolve, 150));
          e.write("a.ts", "rebuilt");
          assert.deepEqual(await e.rec.next(), [changed("a.ts")]);
        }),
    );

    await t.step(
      "a named directory is watched although a .gitignore lists it",
      () =>
        withWatcher(backend, {
          setup: (dir) => {
            seed(dir);
            Deno.writeTextFileSync(`${dir}/.gitignore`, "build/\n");
            Deno.mkdirSync(`${dir}/build/server`, { recursive: true });
            Deno.mkdirSync(`${dir}/build/client`, { recursive: true });
          },
          paths: [".", "build/server"],
          namedDirs: [{ path: "build/server", flag: "--worker-dir" }],
        }, async (e) => {
          assert.deepEqual(e.watcher.notes, [
            "build/server/ is named with --watch and listed in a .gitignore: watched all the same " +
            "(a directory you name beats an ignore file)",
          ]);
          e.write("build/client/c.js"); // still ignored: not named
          e.write("build/top.js"); // on the way to the named directory, not in it
          e.write("build/server/index.js");
          e.mkdir("build/server/assets");
          e.write("build/server/assets/chunk.js");
          assert.deepEqual(await e.rec.next(), [
            added("build/server/assets/chunk.js"),
            added("build/server/index.js"),
          ]);
        }),
    );

    await t.step(
      "built-in ignores and the supervisor's .hotreload files",
      () =>
        withWatcher(backend, {
          setup: (dir) => {
            seed(dir);
            for (
              const d of [".git/hooks", "node_modules/pkg", ".hotreload/app", "src/node_modules/x"]
            ) {
              Deno.mkdirSync(`${dir}/${d}`, { recursive: true });
            }
          },
        }, async (e) => {
          e.write(".git/hooks/post.js");
          e.write("node_modules/pkg/index.js");
          e.write("src/node_modules/x/index.ts");
          e.write(".hotreload/app/state.json");
          e.write(".hotreload/app/control.sock.json");
          e.write("a.ts~");
          e.write(".a.ts.swp");
          e.write(".a.ts.swx");
          e.write(".a.ts.swo");
          e.write(".#a.ts");
          e.write("4913");
          e.write("build.tmp");
          e.write("src/c.ts");
          assert.deepEqual(await e.rec.next(), [added("src/c.ts")]);
          // The supervisor keeps writing its own files: still nothing but real changes.
          for (let i = 0; i < 5; i++) e.append(".hotreload/app/state.json");
          e.append("src/c.ts");
          assert.deepEqual(await e.rec.next(), [changed("src/c.ts")]);
        }),
    );

    await t.step(
      "root deleted and recreated: watching resumes",
      () =>
        withWatcher(backend, { rootSub: "app", setup: seed }, async (e) => {
          e.rm("");
          assert.deepEqual(await e.rec.next(), [removed("a.ts"), removed("src/b.ts")]);
          Deno.mkdirSync(e.dir);
          e.write("a.ts");
          assert.deepEqual(await e.rec.next(), [added("a.ts")]);
          e.append("a.ts");
          assert.deepEqual(await e.rec.next(), [changed("a.ts")]);
          e.mkdir("src/new");
          e.write("src/new/c.ts");
          assert.deepEqual(await e.rec.next(), [added("src/new/c.ts")]);
        }),
    );

    await t.step(
      "debounce coalesces kinds within one batch",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.write("n.ts"); // added ...
          e.append("n.ts"); // ... then changed: added
          e.append("a.ts"); // changed ...
          e.rm("a.ts"); // ... then removed: removed
          e.rm("src/b.ts"); // removed ...
          e.write("src/b.ts", "back"); // ... then added again: changed
          e.write("tmp.ts");
          e.rm("tmp.ts"); // added then removed: dropped
          assert.deepEqual(await e.rec.next(), [
            removed("a.ts"),
            added("n.ts"),
            changed("src/b.ts"),
          ]);
        }),
    );

    await t.step(
      "--watch paths: a subdirectory and a single file of any extension",
      () =>
        withWatcher(backend, {
          setup: (dir) => {
            seed(dir);
            Deno.writeTextFileSync(`${dir}/config.yaml`, "a: 1\n");
            Deno.mkdirSync(`${dir}/other`);
          },
          paths: ["src", "config.yaml"],
        }, async (e) => {
          e.write("other/x.ts"); // not watched
          e.write("a.ts"); // not watched
          e.write("config.yaml.tmp", "a: 2\n");
          Deno.renameSync(e.abs("config.yaml.tmp"), e.abs("config.yaml"));
          assert.deepEqual(await e.rec.next(), [changed("config.yaml")]);
          e.append("config.yaml");
          e.write("src/s.ts");
          assert.deepEqual(await e.rec.next(), [changed("config.yaml"), added("src/s.ts")]);
        }),
    );

    await t.step(
      "a .gitignore edit takes effect",
      () =>
        withWatcher(backend, { setup: seed }, async (e) => {
          e.write(".gitignore", "src/\n");
          // Wait until the new rules are in force: a change under src/ alone gives nothing,
          // so probe with a real change and check that src/ is no longer reported.
          await waitFor(async () => {
            e.append("src/b.ts");
            e.write("probe.ts", String(Math.random()));
            const batch = await e.rec.next();
            return batch.some((c) => c.path === "probe.ts") &&
              batch.every((c) => !c.path.startsWith("src/"));
          }, { what: "the .gitignore to apply" });
          // Drain what the probing left on its way, then check once more from a clean slate.
          e.write("drained.ts");
          while (!(await e.rec.next()).some((c) => c.path === "drained.ts"));
          e.append("src/b.ts");
          e.write("final.ts");
          assert.deepEqual(await e.rec.next(), [added("final.ts")]);
        }),
    );
  });
}

Deno.test("close() is idempotent and stops batches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hrwatch-test-" });
  try {
    for (const poll of [{ mode: "never" as const }, { mode: "force" as const, intervalMs: 30 }]) {
      const first = new Recorder();
      const w1 = await createWatcher({ root: dir, poll, debounceMs: 20, onBatch: first.onBatch });
      await w1.close();
      await w1.close();
      const second = new Recorder();
      const w2 = await createWatcher({ root: dir, poll, debounceMs: 20, onBatch: second.onBatch });
      try {
        Deno.writeTextFileSync(`${dir}/after-close-${poll.mode}.ts`, "x");
        assert.deepEqual(await second.next(), [added(`after-close-${poll.mode}.ts`)]);
        assert.equal(first.batches.length, 0);
      } finally {
        await w2.close();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("events: a directory replaced while its files' own events are lost reports them changed", async () => {
  // Under load, inotify watches a new directory only some time after it appears:
  // the events of files written into it meanwhile never come. Scripted here.
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const { watchFs: scripted, send } = scriptedWatchFs();
  const rec = new Recorder();
  Deno.mkdirSync(`${dir}/src`);
  Deno.writeTextFileSync(`${dir}/src/b.ts`, "old");
  Deno.writeTextFileSync(`${dir}/src/c.ts`, "old");
  const watcher = await createWatcherWith(
    { root: dir, debounceMs: 20, poll: { mode: "never" }, onBatch: rec.onBatch },
    { watchFs: scripted },
  );
  try {
    Deno.removeSync(`${dir}/src`, { recursive: true });
    Deno.mkdirSync(`${dir}/src`);
    Deno.writeTextFileSync(`${dir}/src/b.ts`, "new");
    await send({ kind: "remove", paths: [`${dir}/src`] }, {
      kind: "create",
      paths: [`${dir}/src`],
    });
    assert.deepEqual(await rec.next(), [changed("src/b.ts"), removed("src/c.ts")]);
  } finally {
    await watcher.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("events: a named file made a link to a file elsewhere is reported, and so are edits of that file", async () => {
  // Deno.watchFs drops the events of a path whose link leads outside the watched paths.
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const elsewhere = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-elsewhere-" }));
  const rec = new Recorder();
  Deno.writeTextFileSync(`${dir}/main.ts`, "x");
  Deno.writeTextFileSync(`${dir}/.env`, "X=1\n");
  Deno.writeTextFileSync(`${elsewhere}/app.env`, "X=2\n");
  const watcher = await createWatcherWith({
    root: dir,
    alsoFiles: [".env"],
    poll: { mode: "never" },
    onBatch: rec.onBatch,
  });
  try {
    Deno.removeSync(`${dir}/.env`);
    assert.deepEqual(await rec.next(), [removed(".env")]);
    Deno.symlinkSync(`${elsewhere}/app.env`, `${dir}/.env`);
    assert.deepEqual(await rec.next("the link"), [added(".env")]);
    Deno.writeTextFileSync(`${elsewhere}/app.env`, "X=3\n");
    assert.deepEqual(await rec.next("the edit of its target"), [changed(".env")]);
  } finally {
    await watcher.close();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(elsewhere, { recursive: true });
  }
});

Deno.test("events: a save goes out after the settled quiet once every file it wrote is closed", async () => {
  // Scripted events, real files; the debounce's timer records the quiet it was asked for.
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const { watchFs: scripted, send } = scriptedWatchFs();
  let quiets: number[] = [];
  // Long enough that no fire happens between two scripted events; the test fires it.
  let fire: (() => void) | undefined;
  const schedule = (fn: () => void, ms: number) => {
    quiets.push(ms);
    fire = fn;
    return setTimeout(() => {}, 60_000);
  };
  const rec = new Recorder();
  for (const name of ["a.ts", "b.ts"]) Deno.writeTextFileSync(`${dir}/${name}`, "old");
  const watcher = await createWatcherWith(
    { root: dir, debounceMs: 20, poll: { mode: "never" }, onBatch: rec.onBatch },
    { watchFs: scripted, schedule },
  );
  const a = `${dir}/a.ts`, b = `${dir}/b.ts`;
  try {
    Deno.writeTextFileSync(a, "new");
    await send({ kind: "modify", paths: [a] });
    assert.deepEqual(quiets, [20], "a write still open waits for the whole debounce");
    await send({ kind: "access", paths: [a] });
    assert.deepEqual(quiets, [20, 8], "closed: the settled quiet");
    fire!();
    assert.deepEqual(await rec.next(), [changed("a.ts")]);

    quiets = [];
    Deno.writeTextFileSync(b, "new");
    await send({ kind: "modify", paths: [a] }, { kind: "modify", paths: [b] });
    await send({ kind: "access", paths: [a] });
    assert.deepEqual(quiets, [20, 20], "one of two files still open: no settling");
    await send({ kind: "access", paths: [b] });
    assert.deepEqual(quiets, [20, 20, 8], "both closed");
    fire!();
    assert.deepEqual(await rec.next(), [changed("a.ts"), changed("b.ts")]);

    quiets = [];
    Deno.writeTextFileSync(`${dir}/c.ts`, "x");
    await send({ kind: "rename", paths: [`${dir}/.c.ts.tmp`, `${dir}/c.ts`] });
    assert.deepEqual(quiets, [8], "renamed into place (an atomic save): settled at once");
    fire!();
    assert.deepEqual(await rec.next(), [added("c.ts")]);
  } finally {
    await watcher.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createWatcher picks the backend and says why", async (t) => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const onBatch = () => {};
  const cifs = () => ({
    mounts: `/dev/vda / ext4 rw 0 0\n//srv/s ${dir} cifs rw 0 0\n`,
    osRelease: "6.1.0",
  });
  const local = () => ({ mounts: "/dev/vda / ext4 rw 0 0\n", osRelease: "6.1.0" });
  const failing = (): Deno.FsWatcher => {
    throw new Error("OS file watch limit reached (ENOSPC)");
  };
  const open = async (options: Partial<WatchOptions>, deps: WatcherDeps) => {
    const w = await createWatcherWith({ root: dir, onBatch, ...options }, deps);
    await w.close();
    return w;
  };
  try {
    await t.step("auto on a local disk: events", async () => {
      const w = await open({}, { systemInfo: local });
      assert.equal(w.backend, "events");
      assert.equal(w.fallbackReason, undefined);
    });
    await t.step("auto on cifs: poll, with the reason", async () => {
      const w = await open({}, { systemInfo: cifs });
      assert.equal(w.backend, "poll");
      assert.equal(
        w.fallbackReason,
        `${dir} is on a cifs filesystem, where inotify sees no changes`,
      );
    });
    await t.step("auto under WSL: poll", async () => {
      const w = await open({}, {
        systemInfo: () => ({ mounts: local().mounts, osRelease: "5.15.1-microsoft-standard-WSL2" }),
      });
      assert.equal(w.backend, "poll");
      assert.match(w.fallbackReason ?? "", /WSL/);
    });
    await t.step("never on cifs: events, no reason", async () => {
      const w = await open({ poll: { mode: "never" } }, { systemInfo: cifs });
      assert.equal(w.backend, "events");
      assert.equal(w.fallbackReason, undefined);
    });
    await t.step("auto when watchFs fails: poll, with the error", async () => {
      const w = await open({}, { systemInfo: local, watchFs: failing });
      assert.equal(w.backend, "poll");
      assert.match(w.fallbackReason ?? "", /Deno\.watchFs failed on .*ENOSPC/);
    });
    await t.step("never when watchFs fails: a clear error", async () => {
      await assert.rejects(
        open({ poll: { mode: "never" } }, { systemInfo: local, watchFs: failing }),
        /cannot watch .* with Deno\.watchFs \(OS file watch limit reached \(ENOSPC\)\) and polling is off \(--no-poll\)/,
      );
    });
    await t.step("force: poll at the interval, no reason", async () => {
      const w = await createWatcherWith(
        { root: dir, onBatch, poll: { mode: "force", intervalMs: 200 } },
        { systemInfo: cifs },
      );
      try {
        assert.equal(w.backend, "poll");
        assert.equal(w.fallbackReason, undefined);
        // It keeps polling (the rate itself is the benchmark's business).
        await waitFor(() => w.pollStats!().rounds >= 3, { timeoutMs: 10_000, what: "3 rounds" });
      } finally {
        await w.close();
      }
    });
    await t.step("a --watch path that does not exist", async () => {
      await assert.rejects(
        createWatcher({ root: dir, paths: ["nope/src"], onBatch }),
        (err: Error) => {
          assert.match(
            err.message,
            /^--watch path nope\/src does not exist \(.*\/nope\/src\); create it or remove that --watch$/,
          );
          return true;
        },
      );
    });
    await t.step("bad numbers", async () => {
      await assert.rejects(
        createWatcher({ root: dir, debounceMs: -1, onBatch }),
        /debounce must be/,
      );
      await assert.rejects(
        createWatcher({ root: dir, poll: { mode: "force", intervalMs: 0 }, onBatch }),
        /poll interval must be a positive number/,
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("poll keeps descriptors on a local disk, none on a network mount, and frees them on close", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const p = StatxProber.load()!;
  const before = p.held;
  const opened: InternalWatcher[] = [];
  try {
    for (let d = 0; d < 3; d++) {
      Deno.mkdirSync(`${dir}/d${d}`);
      for (let i = 0; i < 4; i++) Deno.writeTextFileSync(`${dir}/d${d}/f${i}.ts`, "x");
    }
    const local = () => ({ mounts: "/dev/vda / ext4 rw 0 0\n", osRelease: "6.1.0" });
    const nfs = () => ({
      mounts: `/dev/vda / ext4 rw 0 0\nsrv:/x ${dir} nfs4 rw 0 0\n`,
      osRelease: "6.1.0",
    });
    const open = async (systemInfo: typeof local) => {
      const w = await createWatcherWith(
        { root: dir, poll: { mode: "force" }, onBatch: () => {} },
        { systemInfo },
      );
      opened.push(w);
      return w;
    };
    const w1 = await open(local);
    const { rounds: _r1, ...table1 } = w1.pollStats!();
    assert.deepEqual(table1, { files: 12, dirs: 4, heldFiles: 12, heldDirs: 3 });
    assert.equal(p.held, before + 15);
    await w1.close();
    assert.equal(p.held, before);
    const w2 = await open(nfs);
    const { rounds: _r2, ...table2 } = w2.pollStats!();
    assert.deepEqual(table2, { files: 12, dirs: 4, heldFiles: 0, heldDirs: 0 });
  } finally {
    for (const w of opened) await w.close(); // close() is idempotent
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("poll: a burst that ended before the round goes out at once; on a network mount a follow-up round confirms it", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-test-" }));
  const local = () => ({ mounts: "/dev/vda / ext4 rw 0 0\n", osRelease: "6.1.0" });
  const nfs = () => ({
    mounts: `/dev/vda / ext4 rw 0 0\nsrv:/x ${dir} nfs4 rw 0 0\n`,
    osRelease: "6.1.0",
  });
  // Rounds counted from the write to its batch, for a write made just after
  // the first round: a one-file tree is scanned within the timer callback that
  // counts the round, so the write cannot land inside it, and the next round
  // is a whole interval later, far more than the debounce.
  const roundsToBatch = async (systemInfo: typeof local, name: string): Promise<number> => {
    const rec = new Recorder();
    const w = await createWatcherWith({
      root: dir,
      debounceMs: 20,
      poll: { mode: "force", intervalMs: 1000 },
      onBatch: rec.onBatch,
    }, { systemInfo });
    try {
      await waitFor(() => w.pollStats!().rounds >= 1, { what: "the first round" });
      const before = w.pollStats!().rounds;
      Deno.writeTextFileSync(`${dir}/${name}`, "x");
      assert.deepEqual(await rec.next(), [added(name)]);
      return w.pollStats!().rounds - before;
    } finally {
      await w.close();
    }
  };
  try {
    Deno.writeTextFileSync(`${dir}/a.ts`, "a");
    // Local: the round after the write sees a change older than the debounce
    // and hands the batch out.
    assert.equal(await roundsToBatch(local, "b.ts"), 1);
    // Network mount: the server's clock is not ours, so a follow-up round
    // always confirms.
    assert.equal(await roundsToBatch(nfs, "c.ts"), 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------- filter and coalescing

Deno.test("unseen: why a file's changes would never be reported", async () => {
  const base = await Deno.realPath(await Deno.makeTempDir({ prefix: "hrwatch-unseen-" }));
  const dir = `${base}/app`;
  for (const d of [dir, `${dir}/build`, `${dir}/lib`, `${base}/shared`, `${base}/other`]) {
    Deno.mkdirSync(d, { recursive: true });
  }
  Deno.writeTextFileSync(`${dir}/.gitignore`, "build/\n");
  Deno.symlinkSync("../other", `${dir}/vendor`);
  const watcher = await createWatcher({ root: dir, paths: [".", "../shared"], onBatch: () => {} });
  try {
    assert.equal(watcher.unseen(`${dir}/lib/a.ts`), undefined);
    assert.equal(watcher.unseen(`${base}/shared/s.ts`), undefined);
    assert.equal(watcher.unseen(`${dir}/build/mod.js`), "ignored");
    assert.equal(watcher.unseen(`${dir}/lib/a.md`), "not a watched extension (--ext)");
    assert.equal(watcher.unseen(`${base}/other/o.ts`), "outside the watched paths");
    // Through a link to a directory outside: inotify does not follow it, nor does the walk.
    assert.equal(watcher.unseen(`${dir}/vendor/o.ts`), "outside the watched paths");
  } finally {
    await watcher.close();
    await Deno.remove(base, { recursive: true });
  }
});
