/**
 * A Deno older than hotreload supports, for the supervisor and for the
 * workers, is refused before anything starts: one line naming the deno, its
 * version and the one needed, exit 1, nothing under `.hotreload/`, nothing
 * left running. Against a real Deno 2.5.6 (tests/outside.ts installs it once;
 * a failed install fails these tests, saying why).
 */
import assert from "node:assert/strict";
import { CLI, freePort, killTagged, makeProject, runCli, taggedPids } from "./helpers.ts";
import { OLD_DENO_VERSION, oldDeno } from "./outside.ts";

/** Its stderr, less the lines Deno itself prints while it fetches packages into a fresh DENO_DIR. */
function ours(stderr: string | Uint8Array): string {
  const text = typeof stderr === "string" ? stderr : new TextDecoder().decode(stderr);
  return text.split("\n").filter((line) => !line.startsWith("Download ")).join("\n");
}

const APP = { "main.ts": `Deno.serve(() => new Response("never served"));\n` };

/** Runs `body` in a fresh project, then checks that it left nothing behind. */
async function inProject(
  body: (dir: string, port: number, tag: string) => Promise<void>,
): Promise<void> {
  const dir = await makeProject(APP);
  const tag = crypto.randomUUID();
  try {
    await body(dir, freePort(), tag);
    assert.deepEqual(
      [...Deno.readDirSync(dir)].map((entry) => entry.name),
      ["main.ts"],
      "nothing was created in the project (no .hotreload/)",
    );
    assert.deepEqual(taggedPids(tag), [], "nothing was left running");
  } finally {
    killTagged(tag);
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test(`a supervisor run by Deno ${OLD_DENO_VERSION} says it needs Deno 2.7, in one line`, async () => {
  const old = await oldDeno();
  await inProject(async (dir, port, tag) => {
    // The CLI's npm packages, cached in DENO_DIR by this Deno first, as on a machine where
    // hotreload ran before: behind a TLS proxy whose CA only newer Denos trust (this VM's),
    // Deno 2.5.6 cannot fetch them itself and would fail before hotreload's code runs.
    assert.equal((await runCli(["--version"], dir)).code, 0);
    const out = await new Deno.Command(old, {
      args: ["run", "-A", CLI, "run", "main.ts", "-N", "--port", String(port), "--no-watch"],
      cwd: dir,
      env: { NO_COLOR: "1", HOTRELOAD_TEST_TAG: tag },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    assert.equal(
      ours(out.stderr),
      `hotreload needs Deno 2.7 or newer; ${old} is ${OLD_DENO_VERSION}\n`,
    );
    assert.equal(new TextDecoder().decode(out.stdout), "");
    assert.equal(out.code, 1);
  });
});

Deno.test(`workers' Deno ${OLD_DENO_VERSION} (--deno, HOTRELOAD_DENO) is refused before anything starts`, async () => {
  const old = await oldDeno();
  const cases: Array<[string, string[], Record<string, string>]> = [
    ["--deno", ["--deno", old], {}],
    ["HOTRELOAD_DENO", [], { HOTRELOAD_DENO: old }],
  ];
  for (const [source, flags, env] of cases) {
    await inProject(async (dir, port, tag) => {
      const out = await runCli(
        ["run", "main.ts", "-N", "--port", String(port), "--no-watch", ...flags],
        dir,
        { ...env, HOTRELOAD_TEST_TAG: tag },
      );
      assert.equal(
        ours(out.stderr),
        `hotreload needs Deno 2.7 or newer; ${old} (from ${source}) is ${OLD_DENO_VERSION}\n`,
      );
      assert.equal(out.stdout, "");
      assert.equal(out.code, 1);
    });
  }
});

Deno.test("a --deno that does not run as Deno gets a line of its own", async () => {
  await inProject(async (dir, port, tag) => {
    const notDeno = `${dir}/../${crypto.randomUUID()}-not-deno`;
    const noInterpreter = `${notDeno}-broken`;
    try {
      await Deno.writeTextFile(notDeno, "#!/bin/sh\necho 'v20.20.2'\n", { mode: 0o755 });
      await Deno.writeTextFile(noInterpreter, "#!/nonexistent/interpreter\n", { mode: 0o755 });
      const args = ["run", "main.ts", "-N", "--port", String(port), "--no-watch", "--deno"];
      const env = { HOTRELOAD_TEST_TAG: tag };
      const wrong = await runCli([...args, notDeno], dir, env);
      assert.equal(
        ours(wrong.stderr),
        `hotreload: ${notDeno} (from --deno) does not run as Deno: \`${notDeno} --version\` ` +
          `exited 0 and printed "v20.20.2"\n`,
      );
      assert.equal(wrong.code, 1);
      const broken = await runCli([...args, noInterpreter], dir, env);
      assert.match(
        ours(broken.stderr),
        new RegExp(`^hotreload: cannot run the deno at ${noInterpreter} \\(from --deno\\): .+\\n$`),
      );
      assert.equal(broken.code, 1);
    } finally {
      await Deno.remove(notDeno).catch(() => {});
      await Deno.remove(noInterpreter).catch(() => {});
    }
  });
});
