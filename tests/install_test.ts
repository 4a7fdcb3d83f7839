/**
 * `deno task install` puts a `hotreload` command in $DENO_INSTALL_ROOT/bin
 * (as `deno install` does), and that command works from any directory:
 * --help, and a real start, status and stop of an app in a directory that
 * has nothing of hotreload's.
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, httpGet, makeProject, ROOT, waitFor } from "./helpers.ts";

/** Runs a command to completion; its exit code and output. */
async function run(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(command, {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("deno task install: a hotreload command that runs, reports and stops an app from another directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "hotreload-install-root-" });
  const project = await makeProject({
    "main.ts": `Deno.serve(() => new Response("installed " + Deno.pid));\n`,
  });
  // The installed command runs `deno` from PATH: this Deno, first.
  const path = `${root}/bin:${Deno.execPath().replace(/\/[^/]+$/, "")}:${Deno.env.get("PATH")}`;
  const env = { DENO_INSTALL_ROOT: root, PATH: path };
  let app: Hotreload | undefined;
  try {
    const install = await run(Deno.execPath(), ["task", "install"], ROOT, env);
    assert.equal(install.code, 0, install.stderr);
    const hotreload = `${root}/bin/hotreload`;
    assert.ok(((await Deno.stat(hotreload)).mode ?? 0) & 0o111, `${hotreload} is executable`);

    const help = await run("hotreload", ["--help"], project, env);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^hotreload \d+\.\d+\.\d+ — /);

    const port = freePort();
    app = new Hotreload(
      ["run", "main.ts", "-N", "--workers", "2", "--port", String(port), "--no-watch"],
      project,
      env,
      [],
      [hotreload],
    );
    await app.waitForOutput("2 worker(s) ready");
    await waitFor(async () => (await httpGet(port)).body.startsWith("installed "), "an answer");
    const status = await run("hotreload", ["status", "--json"], project, env);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).supervisor.pid, app.pid);
    const stop = await run("hotreload", ["stop"], project, env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await app.status).code, 0, app.output.text());
    assert.deepEqual([...Deno.readDirSync(project)].map((e) => e.name), ["main.ts"]);
  } finally {
    await app?.cleanup();
    await Deno.remove(project, { recursive: true });
    await Deno.remove(root, { recursive: true });
  }
});
