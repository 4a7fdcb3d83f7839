/**
 * The README's test command on a fresh clone: the repository's files (as git
 * would clone them, from this working tree) in a temporary directory, an
 * empty DENO_DIR, and `deno task test` run there for the tests that need
 * parts from outside (the framework fixtures' npm packages, promtool). They
 * must set those parts up themselves: nothing installed by hand, nothing
 * installed by .ci/run.
 */
import assert from "node:assert/strict";
import { killTagged, ROOT, taggedPids } from "./helpers.ts";
import { cloneInto } from "./clone.ts";
import { OLD_DENO_VERSION } from "./outside.ts";

/** Set in the inner run, so that it does not clone again. */
const INNER = "HOTRELOAD_FRESH_CLONE";
/** The tests that need parts from outside the repository (npm packages, promtool, an old Deno). */
const NEEDS_OUTSIDE = `/express|Express|promtool|Deno ${OLD_DENO_VERSION.replaceAll(".", "\\.")}/`;

Deno.test({
  name: "the README's test command passes on a fresh clone with an empty DENO_DIR",
  ignore: Deno.env.get(INNER) === "1",
  async fn() {
    const readme = await Deno.readTextFile(`${ROOT}/README.md`);
    const command = readme.match(/# run the test suite\n(.+)\n/)?.[1].trim();
    assert.equal(command, "deno task test", "the README's test command");
    const clone = await Deno.makeTempDir({ prefix: "hotreload-clone-" });
    const denoDir = await Deno.makeTempDir({ prefix: "hotreload-deno-dir-" });
    const tag = crypto.randomUUID();
    try {
      assert.ok((await cloneInto(clone)) > 50, "the repository's files were copied");
      const started = performance.now();
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "test", "--filter", NEEDS_OUTSIDE],
        cwd: clone,
        env: { DENO_DIR: denoDir, NO_COLOR: "1", [INNER]: "1", HOTRELOAD_TEST_TAG: tag },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(600_000),
      }).output();
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      const summary = text.split("\n").filter((l) => /^(ok|FAILED) \| \d+ passed/.test(l)).at(-1);
      console.log(`fresh clone: "${summary}" in ${seconds} s`);
      assert.equal(out.code, 0, `the fresh clone's run failed:\n${text.slice(-4000)}`);
      const passed = Number(summary?.match(/(\d+) passed/)?.[1]);
      assert.ok(passed >= 3, `the outside-part tests ran (${summary})`);
      assert.match(summary ?? "", /\| 0 failed/);
    } finally {
      killTagged(tag);
      assert.deepEqual(taggedPids(tag), []);
      await Deno.remove(clone, { recursive: true });
      await Deno.remove(denoDir, { recursive: true });
    }
  },
});
