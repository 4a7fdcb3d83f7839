/**
 * `hotreload monit` as a user runs it: in a terminal (a pty from util-linux's
 * `script`), it draws the live table with the workers' pids and leaves on
 * `q`, restoring the terminal; without a terminal it refuses in one line.
 */
import assert from "node:assert/strict";
import { CLI, Output, runCli, waitFor, watchingArgs, withHotreload } from "./helpers.ts";

Deno.test("monit: without a terminal it refuses in one line, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-test-" });
  try {
    const result = await runCli(["monit"], dir);
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^hotreload: monit .*needs a terminal.*\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("monit: in a terminal, the live table with the workers' pids; q leaves and restores it", async () => {
  const script = "/usr/bin/script";
  try {
    await Deno.stat(script);
  } catch {
    throw new Error(
      "util-linux's script is missing (it gives monit a terminal): install util-linux",
    );
  }
  await withHotreload(
    { "main.ts": `Deno.serve(() => new Response("ok"));` },
    (port) => watchingArgs(port, "--workers", "2", "--no-watch"),
    async (run, { dir }) => {
      await run.waitForReady(2);
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      const pids: number[] = status.children
        .filter((row: { role: string }) => row.role === "worker")
        .map((row: { pid: number }) => row.pid);
      const command = `stty cols 120 rows 30; exec ${Deno.execPath()} run -A ${CLI} monit`;
      const monit = new Deno.Command(script, {
        args: ["-qfec", command, "/dev/null"],
        cwd: dir,
        env: { NO_COLOR: "1", HOTRELOAD_TEST_TAG: run.tag },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = new Output();
      const pump = (async () => {
        for await (const text of monit.stdout.pipeThrough(new TextDecoderStream())) {
          output.feed(text);
        }
      })();
      const writer = monit.stdin.getWriter();
      try {
        await waitFor(
          () => pids.every((pid) => output.has(new RegExp(`^worker\\s+\\d+\\s+${pid}\\s+ready`))),
          () => `rows with pids ${pids.join(", ")}\n--- monit ---\n${output.text()}`,
        );
        assert.ok(output.text().includes("\x1b[?1049h"), "the alternate screen");
        await writer.write(new TextEncoder().encode("q"));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const result = await Promise.race([
          monit.status,
          new Promise<undefined>((resolve) => timer = setTimeout(() => resolve(undefined), 10_000)),
        ]);
        clearTimeout(timer);
        assert.ok(result, `monit did not leave within 10 s of q\n${output.text()}`);
        await pump;
        output.end();
        assert.equal(result.code, 0, output.text());
        const tail = output.text().slice(output.text().lastIndexOf("\x1b[H"));
        assert.ok(
          tail.includes("\x1b[?25h\x1b[?1049l"),
          `cursor and screen restored: ${JSON.stringify(tail)}`,
        );
      } finally {
        try {
          monit.kill("SIGKILL");
        } catch { /* exited */ }
        await writer.close().catch(() => {});
        await monit.status;
        await monit.stderr.cancel().catch(() => {});
      }
    },
  );
});
