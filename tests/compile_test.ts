/**
 * The single binary: built with `deno task compile` when `deno compile` can get
 * its `denort` runtime (network, or DENORT_BIN); then the core scenario runs
 * with it. Where it cannot, the test is ignored and says why.
 */
import assert from "node:assert/strict";
import {
  freePort,
  killTagged,
  makeProject,
  ROOT,
  serveArgs,
  taggedPids,
  waitFor,
} from "./helpers.ts";
import { waitForBody } from "./load.ts";

const build = await new Deno.Command(Deno.execPath(), {
  args: ["task", "compile"],
  cwd: ROOT,
  env: { NO_COLOR: "1" },
  stdout: "piped",
  stderr: "piped",
  signal: AbortSignal.timeout(300_000),
}).output();
const why = new TextDecoder().decode(build.stderr).trim().split("\n").at(-1) ?? "";
if (!build.success) {
  console.log(`compile test skipped: the binary could not be built here: ${why}`);
}

Deno.test({
  name: "the compiled binary runs workers on one port, reloads and stops",
  ignore: !build.success,
  async fn() {
    const dir = await makeProject({
      "main.ts": `Deno.serve(() => new Response(String(Deno.pid)));\n`,
    });
    const port = freePort();
    const tag = crypto.randomUUID();
    const binary = new Deno.Command(`${ROOT}/dist/hotreload`, {
      args: serveArgs(port, "-w", "2"),
      cwd: dir,
      env: { HOTRELOAD_TEST_TAG: tag, HOTRELOAD_DENO: Deno.execPath() },
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const pids = new Set<string>();
      await waitFor(async () => {
        pids.add(
          await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: "close" } }))
            .text(),
        );
        return pids.size === 2;
      }, "2 workers answering");
      // The runtime files the binary wrote out serve the next generation too.
      await Deno.writeTextFile(`${dir}/main.ts`, `Deno.serve(() => new Response("v2"));\n`);
      binary.kill("SIGHUP");
      await waitForBody(port, "v2");
      binary.kill("SIGTERM");
      assert.equal((await binary.status).code, 0);
      await waitFor(() => taggedPids(tag).length === 0, "nothing left");
    } finally {
      try {
        binary.kill("SIGKILL");
      } catch { /* exited */ }
      await binary.status;
      killTagged(tag);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
