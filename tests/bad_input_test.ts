/**
 * Bad input: one clear line on stderr, a non-zero exit, and nothing started.
 */
import assert from "node:assert/strict";
import {
  freePort,
  Hotreload,
  killTagged,
  makeProject,
  runCli,
  serveArgs,
  taggedPids,
} from "./helpers.ts";

const APP = `Deno.serve((_req) => new Response("ok"));\n`;

async function refused(
  args: string[],
  expected: RegExp,
  env: Record<string, string> = {},
  files: Record<string, string> = { "main.ts": APP },
): Promise<void> {
  const dir = await makeProject(files);
  const tag = crypto.randomUUID();
  try {
    const result = await runCli(args, dir, { ...env, HOTRELOAD_TEST_TAG: tag });
    assert.notEqual(result.code, 0, `${args.join(" ")} should fail`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line on stderr, got:\n${result.stderr}`);
    assert.match(lines[0], expected);
    assert.equal(result.stdout, "");
    assert.deepEqual(taggedPids(tag), [], "nothing was started");
    await assert.rejects(() => Deno.stat(`${dir}/.hotreload`), "no runtime directory left");
  } finally {
    killTagged(tag); // only if it wrongly started something
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("missing entry file", () =>
  refused(["run", "nope.ts"], /entry file not found: nope\.ts/));

Deno.test("no entry at all", () => refused(["run", "--workers", "2"], /missing entry/));

Deno.test("unknown option is named, with the nearest one", async () => {
  await refused(
    ["run", "main.ts", "--wrokers", "2"],
    /unknown option --wrokers: .*did you mean --workers\?$/,
  );
  await refused(
    ["run", "main.ts", "--alow-net"],
    /unknown option --alow-net: .*did you mean --allow-net\?$/,
  );
  await refused(
    ["run", "main.ts", "--zzzzzz"],
    /unknown option --zzzzzz: .*see "hotreload run --help"$/,
  );
});

Deno.test("a mistyped control option or command suggests the nearest", async () => {
  await refused(
    ["stop", "--nmae", "x"],
    /unknown option --nmae for "hotreload stop"; did you mean --name\?$/,
  );
  await refused(
    ["scale", "--timout", "9", "2"],
    /unknown option --timout .*did you mean --timeout\?$/,
  );
  await refused(
    ["stop", "--zzzzzz"],
    /unknown option --zzzzzz for "hotreload stop"; see "hotreload stop --help"$/,
  );
  await refused(["stauts"], /unknown command "stauts"; did you mean "status"\?$/);
});

Deno.test("unknown short flag is named", () =>
  refused(["run", "-Z", "main.ts"], /unknown option -Z/));

Deno.test("extra positional argument points at --", () =>
  refused(["run", "main.ts", "extra"], /app arguments go after --/));

Deno.test("--workers 0", () =>
  refused(["run", "main.ts", "--workers", "0"], /--workers must be .*got "0"/));

Deno.test("--workers abc", () =>
  refused(["run", "main.ts", "-w", "abc"], /--workers must be .*got "abc"/));

Deno.test("--port out of range", () =>
  refused(["run", "main.ts", "--port", "70000"], /--port must be/));

Deno.test("an option without its value", () =>
  refused(["run", "main.ts", "--grace"], /--grace needs a value/));

Deno.test("negative numbers get the range message, in one line", async () => {
  await refused(["run", "main.ts", "--workers", "-1"], /--workers must be .*got "-1"/);
  await refused(
    ["run", "main.ts", "--port", "-5"],
    /--port must be a whole number from 1 to 65535 \(got "-5"\)/,
  );
  await refused(["run", "main.ts", "-w", "-3"], /--workers must be .*got "-3"/);
});

Deno.test("durations are bounded: 2^31 ms and more would overflow a timer", async () => {
  await refused(["run", "main.ts", "--grace", "2147483648"], /--grace must be at most 86400000 ms/);
  await refused(
    ["run", "main.ts", "--ready-timeout", "99999999999"],
    /--ready-timeout must be at most 86400000 ms/,
  );
});

Deno.test("a --watch path that does not exist leaves nothing behind", () =>
  refused(
    ["run", "main.ts", "--watch", "/nonexistent"],
    /--watch path \/nonexistent does not exist/,
  ));

Deno.test("an over-long --name", () =>
  refused(["run", "main.ts", "--name", "n".repeat(300)], /--name must be at most 64 letters/));

Deno.test("Deno flags that deno itself refuses are reported before anything starts", async () => {
  await refused(
    ["run", "main.ts", "--location=notaurl"],
    /deno refuses the Deno flags \(--location=notaurl\): Failed to parse URL/,
  );
  await refused(
    ["run", "main.ts", "--import-map=missing.json"],
    /deno refuses the Deno flags .*Unable to load .*missing\.json/,
  );
  await refused(["run", "main.ts", "-A", "--allow-net"], /--allow-all conflicts with --allow-net/);
});

Deno.test("unknown command", () => refused(["launch", "main.ts"], /unknown command "launch"/));

Deno.test("deno not found", async () => {
  await refused(
    ["run", "main.ts", "--deno", "/nonexistent/deno"],
    /deno not found at \/nonexistent\/deno/,
  );
  await refused(["run", "main.ts"], /deno not found.*HOTRELOAD_DENO/, {
    HOTRELOAD_DENO: "/nonexistent/deno",
  });
});

Deno.test("port already in use by a foreign process", async () => {
  const foreign = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (foreign.addr as Deno.NetAddr).port;
  try {
    await refused(
      ["run", "main.ts", "-N", "--port", String(port)],
      new RegExp(`port ${port} is already in use by another process`),
    );
  } finally {
    foreign.close();
  }
});

Deno.test("a second instance with the same name in the same directory", async () => {
  const dir = await makeProject({ "main.ts": APP });
  const port = freePort();
  const first = new Hotreload(serveArgs(port), dir);
  const tag = crypto.randomUUID();
  try {
    await first.waitForReady(1);
    const second = await runCli(serveArgs(freePort()), dir, { HOTRELOAD_TEST_TAG: tag });
    assert.notEqual(second.code, 0);
    assert.match(
      second.stderr.trim(),
      /^hotreload: an instance named "main" is already running here \(pid \d+\)/,
    );
    assert.equal(second.stderr.trim().split("\n").length, 1);
    assert.deepEqual(taggedPids(tag), []);
    // The first instance is untouched: its record is still there and names it.
    const record = JSON.parse(await Deno.readTextFile(`${dir}/.hotreload/main/instance.json`));
    assert.equal(record.pid, first.pid);
  } finally {
    killTagged(tag); // only if the second start wrongly started something
    await first.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an app whose own port is taken: the start fails naming the port, nothing left", async () => {
  const foreign = Deno.listen({ hostname: "0.0.0.0", port: 0 });
  const port = (foreign.addr as Deno.NetAddr).port;
  const dir = await makeProject({
    "main.ts": `Deno.serve({ port: ${port} }, () => new Response("x"));\n`,
  });
  const run = new Hotreload(["run", "main.ts", "-N", "-w", "2", "--no-watch"], dir);
  try {
    const status = await run.status;
    assert.equal(status.code, 1);
    assert.ok(
      run.output.has(`error: cannot listen: port ${port} is already in use by another process`),
      run.output.text(),
    );
    assert.deepEqual(taggedPids(run.tag), []);
  } finally {
    foreign.close();
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a --watch path that does not exist", () =>
  refused(["run", "main.ts", "-N", "--watch", "nope"], /--watch path nope does not exist/));

Deno.test("--poll below 10 ms", () =>
  refused(["run", "main.ts", "--poll", "5"], /--poll must be a whole number of at least 10/));

Deno.test("--poll and --no-poll together", () =>
  refused(["run", "main.ts", "--poll", "100", "--no-poll"], /--poll and --no-poll contradict/));

Deno.test("--log-format must be pretty or json", () =>
  refused(["run", "main.ts", "--log-format", "xml"], /--log-format must be pretty or json/));

Deno.test("--process needs name=entry and an existing entry", async () => {
  await refused(["run", "main.ts", "--process", "queue"], /--process takes name=entry/);
  await refused(["run", "main.ts", "--process", "q=missing.ts"], /--process q: file not found/);
});

Deno.test("a refused Deno flag says what to use instead", () =>
  refused(["run", "main.ts", "--hmr"], /--hmr is not supported: hotreload reloads workers itself/));
