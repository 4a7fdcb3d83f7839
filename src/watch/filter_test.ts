/** What the watcher ignores: built-in ignores, --ext, --ignore, .gitignore files and named directories. */
import assert from "node:assert/strict";
import { PathFilter } from "./filter.ts";
import { DEFAULT_EXTENSIONS } from "./mod.ts";

Deno.test("PathFilter", () => {
  const files: Record<string, string> = {
    "/p/.gitignore": "dist/\n*.gen.ts\n!keep.gen.ts\n/only-root.ts\n",
    "/p/pkg/.gitignore": "local/\nsecret.ts\n!dist/\n",
  };
  const f = new PathFilter({
    root: "/p",
    extensions: DEFAULT_EXTENSIONS,
    ignore: ["*.test.ts", "fixtures/**"],
    explicitFiles: ["conf/app.yaml"],
    readText: (abs) => files[abs] ?? null,
  });
  const accepts = (rel: string) => f.acceptsFile(rel);
  // extensions
  assert.equal(accepts("a.ts"), true);
  assert.equal(accepts("src/a.TSX"), true);
  assert.equal(accepts("a.jsonc"), true);
  assert.equal(accepts("a.md"), false);
  assert.equal(accepts("Makefile"), false);
  assert.equal(accepts(".ts"), false);
  // built-ins
  for (const rel of ["a.ts~", ".a.ts.swp", ".a.ts.swo", ".a.ts.swx", ".#a.ts", "4913", "x.tmp"]) {
    assert.equal(f.ignoredAnyway(rel), true, rel);
  }
  for (
    const rel of [".git/x.js", "node_modules/p/i.js", "a/node_modules/p/i.js", ".hotreload/s.json"]
  ) {
    assert.equal(accepts(rel), false, rel);
    assert.equal(f.ignoredAnyway(rel), true, rel);
  }
  assert.equal(f.ignoredDir(".git"), true);
  assert.equal(f.ignoredDir("src/.hotreload"), true);
  // --ignore
  assert.equal(accepts("a.test.ts"), false);
  assert.equal(accepts("src/b.test.ts"), false);
  assert.equal(accepts("fixtures/x/y.ts"), false);
  // root .gitignore: dir-only pattern, glob, negation, anchored
  assert.equal(f.ignoredDir("dist"), true);
  assert.equal(accepts("dist/a.js"), false);
  assert.equal(accepts("x.gen.ts"), false);
  assert.equal(accepts("keep.gen.ts"), true);
  assert.equal(accepts("only-root.ts"), false);
  assert.equal(accepts("src/only-root.ts"), true);
  // nested .gitignore applies below its directory only, and overrides the root one
  assert.equal(accepts("pkg/secret.ts"), false);
  assert.equal(accepts("secret.ts"), true);
  assert.equal(f.ignoredDir("pkg/local"), true);
  assert.equal(accepts("pkg/local/a.ts"), false);
  assert.equal(f.ignoredDir("pkg/dist"), false, "re-included by pkg/.gitignore");
  // explicit --watch files bypass every filter
  assert.equal(accepts("conf/app.yaml"), true);
  // paths outside the root: built-ins and extensions only
  assert.equal(accepts("../shared/a.ts"), true);
  assert.equal(accepts("../shared/a.md"), false);
  assert.equal(accepts("../shared/node_modules/a.ts"), false);

  // A named directory: no .gitignore applies in it or on the way to it; --ignore still does.
  const named = new PathFilter({
    root: "/p",
    extensions: DEFAULT_EXTENSIONS,
    ignore: ["out/"],
    namedDirs: ["dist/server", "out/x", ".", "../shared"],
    readText: (abs) =>
      ({ "/p/.gitignore": "dist/\n", "/p/dist/server/.gitignore": "*\n" })[abs] ?? null,
  });
  assert.equal(named.acceptsFile("dist/server/index.js"), true);
  assert.equal(named.acceptsFile("dist/server/deep/chunk.js"), true);
  assert.equal(named.ignoredDir("dist"), false, "entered on the way");
  assert.equal(named.acceptsFile("dist/top.js"), false, "its own files keep the rules");
  assert.equal(named.ignoredDir("dist/client"), true);
  assert.equal(named.acceptsFile("out/x/a.ts"), false, "--ignore beats a name");
  assert.deepEqual(named.namedConflicts(), { gitignored: ["dist/server"], ignored: ["out/x"] });
  // Named and git-ignored: build output, whose bursts wait for a build's quiet (batch.ts).
  assert.equal(named.isBuildOutput("dist/server/index.js"), true);
  assert.equal(named.isBuildOutput("dist/top.js"), false);
  assert.equal(named.isBuildOutput("src/a.ts"), false);

  const all = new PathFilter({
    root: "/p",
    extensions: ["*"],
    gitignore: false,
    readText: (a) => files[a] ?? null,
  });
  assert.equal(all.acceptsFile("Makefile"), true);
  assert.equal(all.acceptsFile("dist/a.js"), true);
  assert.equal(all.acceptsFile("a.ts~"), false);
});
