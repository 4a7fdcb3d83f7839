/**
 * What a hostile review found: forged records, links in the runtime
 * directory, forged frames in app output, secrets in argv, a closed stdout,
 * leaked descriptors, a detached grandchild, a 20 MB line, floods of the
 * control plane, two supervisors racing for one name. Each test fails on the
 * code before the fix.
 */
import assert from "node:assert/strict";
import { processStartTime, procStat } from "../src/child/os.ts";
import { LINE_CUT_MARK } from "../src/runtime/lines.ts";
import { MAX_METRICS_CONNECTIONS } from "../src/supervisor/metrics_server.ts";
import { askInstance } from "../src/control/client.ts";
import {
  CLI,
  freePort,
  Hotreload,
  httpGet,
  killTagged,
  makeProject,
  runCli,
  serveArgs,
  taggedPids,
  waitFor,
  withHotreload,
} from "./helpers.ts";

const APP = `Deno.serve((_req) => new Response("ok"));\n`;

/** A record as a supervisor writes it, with `fields` overriding. */
function record(dir: string, fields: Record<string, unknown>): string {
  return JSON.stringify({
    name: "evil",
    pid: 12345,
    startTime: 1,
    cwd: dir,
    entry: "main.ts",
    workers: 1,
    graceMs: 5000,
    startedAt: new Date().toISOString(),
    ...fields,
  });
}

async function plant(dir: string, name: string, text: string): Promise<void> {
  await Deno.mkdir(`${dir}/.hotreload/${name}`, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(`${dir}/.hotreload/${name}/instance.json`, text);
}

/** Runs a shell script inside a new pid namespace: `kill(-1)` there reaches only its own processes. */
async function inPidNamespace(script: string, cwd: string) {
  const out = await new Deno.Command("unshare", {
    args: ["-pf", "--mount-proc", "--", "sh", "-c", script],
    cwd,
    env: { NO_COLOR: "1", DENO: Deno.execPath(), CLI },
    stdin: "null",
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return { stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

// ---- 1. Forged records ---------------------------------------------------------------

Deno.test("a forged record (pid -1 or 0, no startTime, no graceMs) is never signalled", async () => {
  const dir = await makeProject({ "main.ts": APP });
  try {
    for (
      const forged of [
        { pid: -1, startTime: undefined },
        { pid: 0, startTime: undefined },
        { pid: 1, startTime: undefined },
        { graceMs: undefined },
      ]
    ) {
      await plant(dir, "evil", record(dir, forged));
      // A sentinel shares the namespace: kill(-1) or a signal to our group would end it.
      const { stdout, stderr } = await inPidNamespace(
        `sleep 30 & sentinel=$!
        "$DENO" run -A "$CLI" stop --name evil; echo "exit $?"
        if kill -0 $sentinel 2>/dev/null; then echo sentinel alive; fi
        kill $sentinel`,
        dir,
      );
      assert.match(stdout, /exit 3/, `${JSON.stringify(forged)}: ${stdout}${stderr}`);
      assert.match(stdout, /sentinel alive/, `${JSON.stringify(forged)}: ${stdout}${stderr}`);
      assert.match(stderr, /removed the stale record of "evil" \(it is not a valid record\)/);
    }
    // `list` shows such a record for what it is, never NaN.
    await plant(dir, "evil", record(dir, { graceMs: undefined, startedAt: "x" }));
    const list = await runCli(["list"], dir);
    assert.equal(list.code, 0, list.stderr);
    assert.doesNotMatch(list.stdout, /NaN/);
    assert.match(list.stdout, /evil\s+invalid .*\(invalid record\)/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a forged workers.json naming another process (its real start time) makes no successor signal it", async () => {
  const dir = await makeProject({ "main.ts": APP });
  const port = freePort();
  // The victim: a process of the same user, not a worker of this instance.
  const victim = new Deno.Command("sleep", { args: ["60"], stdin: "null" }).spawn();
  // A dead supervisor: a process that has exited (its start time no longer matches).
  const gone = new Deno.Command("true").spawn();
  await gone.status;
  try {
    await plant(
      dir,
      "main",
      record(dir, { name: "main", pid: gone.pid, hopKey: "0123456789abcdef0123456789abcdef" }),
    );
    await Deno.writeTextFile(
      `${dir}/.hotreload/main/workers.json`,
      JSON.stringify([{ pid: victim.pid, startTime: processStartTime(victim.pid) }]),
    );
    const run = new Hotreload(serveArgs(port), dir);
    try {
      await run.waitForReady(1);
      // A successor drains the orphans it adopts once its own workers are ready: by now.
      await waitFor(() => run.output.has("1 worker(s) ready"), "the start to complete");
      assert.ok(!run.output.has("succeeded supervisor"), run.output.text());
      assert.notEqual(procStat(victim.pid), undefined, "the victim was signalled");
      assert.notEqual(procStat(victim.pid)?.[0], "Z", "the victim was signalled");
    } finally {
      await run.cleanup();
    }
  } finally {
    victim.kill("SIGKILL");
    await victim.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a runtime directory owned by another user is refused, and never chmodded", async () => {
  const dir = await makeProject({ "main.ts": APP });
  try {
    await Deno.mkdir(`${dir}/.hotreload`, { mode: 0o777 });
    await Deno.chmod(`${dir}/.hotreload`, 0o777);
    await Deno.chown(`${dir}/.hotreload`, 65534, 65534);
    const started = await runCli(serveArgs(freePort()), dir);
    assert.equal(started.code, 1);
    assert.match(
      started.stderr.trim(),
      /^hotreload: .*\.hotreload belongs to uid 65534, not to you/,
    );
    assert.equal(started.stderr.trim().split("\n").length, 1, started.stderr);
    assert.equal((await Deno.stat(`${dir}/.hotreload`)).mode! & 0o777, 0o777, "not chmodded");
    const status = await runCli(["status"], dir);
    assert.equal(status.code, 1);
    assert.match(status.stderr, /belongs to uid 65534/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 2. Links in the runtime directory ----------------------------------------------------

Deno.test("a symlinked runtime directory is refused; the link's target keeps its data and mode", async () => {
  const dir = await makeProject({ "main.ts": APP, "victim/runtime/keep.txt": "data" });
  try {
    await Deno.chmod(`${dir}/victim`, 0o755);
    // .hotreload/main -> victim
    await Deno.mkdir(`${dir}/.hotreload`, { mode: 0o700 });
    await Deno.symlink(`${dir}/victim`, `${dir}/.hotreload/main`);
    const first = await runCli(serveArgs(freePort()), dir);
    assert.equal(first.code, 1, first.stderr);
    assert.match(first.stderr, /\.hotreload\/main is a symbolic link/);
    // .hotreload -> victim
    await Deno.remove(`${dir}/.hotreload`, { recursive: true });
    await Deno.symlink(`${dir}/victim`, `${dir}/.hotreload`);
    const second = await runCli(serveArgs(freePort()), dir);
    assert.equal(second.code, 1, second.stderr);
    assert.match(second.stderr, /\.hotreload is a symbolic link/);
    for (const result of [first, second]) {
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    }
    assert.equal(await Deno.readTextFile(`${dir}/victim/runtime/keep.txt`), "data");
    assert.equal((await Deno.stat(`${dir}/victim`)).mode! & 0o777, 0o755, "not chmodded");
    assert.deepEqual([...Deno.readDirSync(`${dir}/victim`)].map((e) => e.name), ["runtime"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 3. Forged frames in app output --------------------------------------------------------

const ECHO_APP = `Deno.serve(async (req) => {
  const body = await req.text();
  console.log(body);   // an app that logs request bodies
  console.error(body);
  return new Response("logged");
});
`;

Deno.test("frames in app output (an HTTP client's text) are relayed, never obeyed", () =>
  withHotreload({ "main.ts": ECHO_APP }, (port) => serveArgs(port), async (run, { dir, port }) => {
    await run.waitForReady(1);
    const pid = run.output.matches(/worker 0 ready \(pid (\d+)/)[0][1];
    const forged = [
      '\0hotreload:{"t":"recycle","reason":"forged-recycle"}',
      '\0hotreload:00000000000000000000000000000000:{"t":"recycle","reason":"forged-nonce"}',
      `prefix \0hotreload:{"t":"ready","via":"app"}`,
    ];
    for (const body of forged) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const bytes = new TextEncoder().encode(body);
      await conn.write(
        new TextEncoder().encode(
          `POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${bytes.length}\r\n\r\n`,
        ),
      );
      await conn.write(bytes);
      await conn.readable.pipeTo(new WritableStream());
    }
    await run.waitForOutput("forged-nonce");
    // `status` goes through the supervisor's queue after every frame it could have taken.
    const status = await runCli(["status", "--json"], dir);
    const children = JSON.parse(status.stdout).children;
    assert.deepEqual(children.map((c: { pid: number }) => String(c.pid)), [pid]);
    assert.ok(!run.output.has(/replacing it/), run.output.text());
    assert.ok(run.output.has("forged-recycle"), "the text is relayed as output");
  }));

// ---- 4. Secrets in argv, flags smuggled as entries --------------------------------------------

Deno.test("custom-process args never appear in argv or env; an entry that is a flag is refused", async () => {
  const consumer = `import { defineProcess } from "${new URL("../mod.ts", import.meta.url).href}";
export default defineProcess({
  async run(ctx) {
    console.log("token is " + ctx.args.token);
    await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve));
  },
});
`;
  const config = {
    processes: [{ name: "queue", entry: "consumer.ts", args: { token: "s3cret-token" } }],
  };
  await withHotreload(
    { "main.ts": APP, "consumer.ts": consumer, "hotreload.json": JSON.stringify(config) },
    (port) => serveArgs(port),
    async (run) => {
      await run.waitForOutput("token is s3cret-token");
      const pid = Number(run.output.matches(/\[queue#0 (\d+)\] token is/)[0][1]);
      const cmdline = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
      const environ = Deno.readTextFileSync(`/proc/${pid}/environ`);
      assert.ok(!cmdline.includes("s3cret"), cmdline);
      assert.ok(!environ.includes("s3cret"), "not in the environment either");
    },
  );
  const dir = await makeProject({ "main.ts": APP });
  try {
    await Deno.writeTextFile(
      `${dir}/hotreload.json`,
      JSON.stringify({ processes: [{ name: "x", entry: "-A" }] }),
    );
    const fromFile = await runCli(serveArgs(freePort()), dir);
    assert.equal(fromFile.code, 2);
    assert.match(fromFile.stderr, /processes\[0\]\.entry "-A" looks like a flag/);
    await Deno.remove(`${dir}/hotreload.json`);
    const fromFlag = await runCli([...serveArgs(freePort()), "--process", "x=-A"], dir);
    assert.equal(fromFlag.code, 2);
    assert.match(fromFlag.stderr, /"-A" looks like a flag; an entry is a path or URL/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 5. A closed stdout ------------------------------------------------------------------------

const CHATTY_APP = `console.log("worker up");
Deno.serve((_req) => {
  console.log("request served");
  return new Response("ok");
});
`;

Deno.test("a closed stdout (| head -1) never takes the supervisor down", async () => {
  const dir = await makeProject({ "main.ts": CHATTY_APP });
  const port = freePort();
  const tag = crypto.randomUUID();
  const process = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...serveArgs(port, "--workers", "2")],
    cwd: dir,
    env: { NO_COLOR: "1", HOTRELOAD_TEST_TAG: tag },
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    // Read the first line, then close our end, as `head -1` does.
    const reader = process.stdout.getReader();
    await reader.read();
    await reader.cancel();
    await waitFor(async () => (await httpGet(port)).status === 200, "the workers serve");
    let ok = 0;
    for (let i = 0; i < 200; i++) if ((await httpGet(port)).status === 200) ok++;
    assert.equal(ok, 200);
    const status = await runCli(["status", "--json"], dir);
    assert.equal(status.code, 0, status.stderr);
    const report = JSON.parse(status.stdout);
    assert.equal(report.children.length, 2);
    assert.ok(report.supervisor.droppedLines > 0, "the lines it could not write are counted");
    const stop = await runCli(["stop"], dir);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await process.status).code, 0);
    assert.deepEqual(taggedPids(tag), []);
    await assert.rejects(() => Deno.stat(`${dir}/.hotreload`), "nothing left behind");
  } finally {
    killTagged(tag);
    await process.status;
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 6. Descriptors --------------------------------------------------------------------------

const TCP_APP = `const listener = Deno.listen({ port: Number(Deno.env.get("PORT")) });
for await (const conn of listener) conn.close();
`;

function fdCount(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/**
 * The fewest descriptors `pid` holds over 10 looks 20 ms apart: its own,
 * without those it opens for a moment (a read of /proc by rebalancing, a
 * status request), which a single look may catch.
 */
async function steadyFdCount(pid: number): Promise<number> {
  let fewest = Infinity;
  for (let look = 0; look < 10; look++) {
    fewest = Math.min(fewest, fdCount(pid));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return fewest;
}

Deno.test("the supervisor's descriptor count is flat over 100 reloads and crash restarts", () =>
  withHotreload(
    { "main.ts": TCP_APP },
    // No settle window: 100 reloads of 1 s each would say nothing more about descriptors.
    (port) => ["run", "main.ts", "-A", "--port", String(port), "--no-watch", "--settle", "0"],
    async (run, { dir }) => {
      await run.waitForReady(1);
      // Over the control socket, as `hotreload reload` asks, from here: 105 CLI processes, each
      // a Deno start of its own, loaded CI's 2 cores and said nothing more about the supervisor's fds.
      const reload = async () => {
        const { reply, silence } = await askInstance({ dir }, { cmd: "reload" });
        assert.equal(reply?.ok, true, JSON.stringify(reply ?? silence));
      };
      // The first reloads warm up lazily created resources; count from then on.
      for (let i = 0; i < 5; i++) await reload();
      const before = fdCount(run.pid);
      for (let i = 0; i < 100; i++) await reload();
      // A reload is done once the old worker stops accepting; its pipes close when it exits.
      await waitFor(async () => {
        const rows = JSON.parse((await runCli(["status", "--json"], dir)).stdout).children;
        return rows.length === 1;
      }, "the last old worker gone");
      const afterReloads = fdCount(run.pid);
      assert.ok(afterReloads <= before + 2, `fds ${before} → ${afterReloads} over 100 reloads`);
      // Crash restarts: kill the worker a few times.
      for (let i = 0; i < 5; i++) {
        const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
        const pid = status.children[0].pid;
        Deno.kill(pid, "SIGKILL");
        await waitFor(async () => {
          const now = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
          return now.children[0].pid !== pid && now.children[0].state === "ready";
        }, "a restarted worker");
      }
      const afterCrashes = fdCount(run.pid);
      assert.ok(afterCrashes <= before + 2, `fds ${before} → ${afterCrashes} after 5 crashes`);
      console.log(
        `fds: ${before} after warm-up, ${afterReloads} after 100 reloads, ${afterCrashes} after 5 crashes; ` +
          `RSS ${Math.round(Number(procStat(run.pid)![21]) * 4096 / 2 ** 20)} MB`,
      );
    },
  ));

// ---- 7. A detached grandchild ------------------------------------------------------------------

const DETACHING_APP = `new Deno.Command("sleep", { args: ["1003"], detached: true }).spawn();
Deno.serve((req) => {
  if (new URL(req.url).pathname === "/crash") Deno.exit(3);
  return new Response("pid " + Deno.pid);
});
`;

function detachedSleeps(tag: string): number[] {
  return taggedPids(tag).filter((pid) =>
    Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0")[0].endsWith("sleep")
  );
}

Deno.test("a detached grandchild holding the pipes hides no exit: crash restarts and stop work", async () => {
  const dir = await makeProject({ "main.ts": DETACHING_APP });
  const port = freePort();
  const run = new Hotreload(["run", "main.ts", "-A", "--port", String(port), "--no-watch"], dir);
  try {
    await run.waitForReady(1);
    const first = (await httpGet(port)).body;
    await httpGet(port, "/crash").catch(() => {});
    await waitFor(
      async () => (await httpGet(port).catch(() => ({ body: first }))).body !== first,
      "the crashed worker restarted",
    );
    const stop = await runCli(["stop", "--timeout", "8000"], dir);
    assert.equal(stop.code, 0, stop.stderr + run.output.text());
    assert.equal((await run.status).code, 0);
    const busy = run.output.matches(/still busy/).length;
    assert.ok(busy <= 1, `${busy} "still busy" lines`);
  } finally {
    // The app detached these on purpose (own session): they are its, not ours.
    for (const pid of detachedSleeps(run.tag)) Deno.kill(pid, "SIGKILL");
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 8. A 20 MB line ----------------------------------------------------------------------------

const BIG_LINE_APP = `Deno.serve((req) => {
  if (new URL(req.url).pathname === "/big") {
    const chunk = new TextEncoder().encode("x".repeat(1 << 20));
    for (let i = 0; i < 20; i++) Deno.stdout.writeSync(chunk);
    Deno.stdout.writeSync(new TextEncoder().encode("\\nbig line done\\n"));
  }
  return new Response("ok");
});
`;

Deno.test("a 20 MB line is relayed in pieces of at most 64 KiB, and status still answers", () =>
  withHotreload(
    { "main.ts": BIG_LINE_APP },
    (port) => serveArgs(port),
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      await httpGet(port, "/big");
      const status = await runCli(["status", "--json"], dir);
      assert.equal(status.code, 0, status.stderr);
      await run.waitForOutput("big line done");
      const pieces = run.output.lines.filter((line) => line.includes("xxxx"));
      assert.ok(pieces.length >= 320, `${pieces.length} pieces`);
      for (const piece of pieces.slice(0, -1)) {
        assert.ok(piece.endsWith(LINE_CUT_MARK));
        assert.ok(piece.length <= 64 * 1024 + 100, `a piece of ${piece.length} characters`);
      }
    },
  ));

// ---- 9. Floods of the control plane -------------------------------------------------------------

async function rawRequest(dir: string, name: string, line: string): Promise<string[]> {
  const conn = await Deno.connect({
    transport: "unix",
    path: `${dir}/.hotreload/${name}/control.sock`,
  });
  await conn.write(new TextEncoder().encode(line + "\n"));
  const text = await new Response(conn.readable).text();
  return text.trim().split("\n");
}

Deno.test("control plane: scale is bounded, idle connections are timed out, EMFILE is survived", () =>
  withHotreload(
    { "main.ts": APP },
    (port) => serveArgs(port),
    async (run, { dir }) => {
      await run.waitForReady(1);
      const [reply] = await rawRequest(
        dir,
        "main",
        JSON.stringify({ cmd: "scale", workers: 1e308 }),
      );
      assert.match(reply, /workers must be a whole number from 1 to 1024/);
      assert.equal((await runCli(["scale", "5000"], dir)).code, 2);
      // About 30 descriptors are in use at rest: 60 idle clients exhaust the
      // limit of 48, so accept() fails with EMFILE while they stay.
      const path = `${dir}/.hotreload/main/control.sock`;
      const idle: Deno.Conn[] = [];
      try {
        for (let i = 0; i < 60; i++) {
          const conn = await Promise.race([
            Deno.connect({ transport: "unix", path }),
            new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000)),
          ]);
          if (conn) idle.push(conn);
        }
        // An idle client is answered and closed after the read timeout (5 s).
        const text = await new Response(idle[0].readable).text();
        assert.match(text, /no request line within 5000 ms/);
      } finally {
        for (const conn of idle) {
          try {
            conn.close();
          } catch { /* closed with its stream */ }
        }
      }
      const after = await runCli(["status", "--json"], dir);
      assert.equal(after.code, 0, after.stderr);
      assert.equal(JSON.parse(after.stdout).children.length, 1);
    },
    { prefix: ["prlimit", "--nofile=48", "--"] },
  ));

Deno.test("a supervisor that accepts but never answers: the CLI gives up with one line", async () => {
  const dir = await makeProject({ "main.ts": APP });
  // A live process stands in for the supervisor; the test holds its socket and never answers.
  const sleeper = new Deno.Command("sleep", { args: ["60"] }).spawn();
  const socket = `${dir}/.hotreload/main/control.sock`;
  try {
    await plant(
      dir,
      "main",
      record(dir, { name: "main", pid: sleeper.pid, startTime: processStartTime(sleeper.pid) }),
    );
    const listener = Deno.listen({ transport: "unix", path: socket });
    const held: Deno.Conn[] = [];
    (async () => {
      for await (const conn of listener) held.push(conn);
    })();
    try {
      const status = await runCli(["status"], dir);
      assert.equal(status.code, 1);
      assert.match(
        status.stderr.trim(),
        /^hotreload: "main" \(pid \d+\) did not answer on its control socket within 10000 ms/,
      );
    } finally {
      listener.close();
      for (const conn of held) conn.close();
    }
  } finally {
    sleeper.kill("SIGKILL");
    await sleeper.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a custom process count beyond the bound is refused", async () => {
  const dir = await makeProject({
    "main.ts": APP,
    "hotreload.json": JSON.stringify({
      processes: [{ name: "q", entry: "main.ts", count: 1000000 }],
    }),
  });
  try {
    const result = await runCli(serveArgs(freePort()), dir);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /processes\[0\]\.count must be a whole number from 1 to 64/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 10. One name, one instance ------------------------------------------------------------------

Deno.test("an instance's lock is held for its life: a second claim of the name is refused", async () => {
  const dir = await makeProject({ "main.ts": APP });
  try {
    // Another claimant holds the lock but has not written its record yet.
    await Deno.mkdir(`${dir}/.hotreload/main`, { recursive: true, mode: 0o700 });
    const lock = await Deno.open(`${dir}/.hotreload/main/lock`, { create: true, write: true });
    await lock.lock(true);
    try {
      const result = await runCli(serveArgs(freePort()), dir);
      assert.equal(result.code, 1, result.stderr);
      assert.match(result.stderr, /an instance named "main" is already running here/);
    } finally {
      lock.close();
    }
    // Two supervisors started together: exactly one runs.
    const port = freePort();
    const runs = [new Hotreload(serveArgs(port), dir), new Hotreload(serveArgs(port), dir)];
    try {
      const exits = await Promise.race([
        Promise.any(runs.map((r) => r.status.then(() => r))),
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 20_000)),
      ]);
      assert.ok(exits, "one of the two must be refused");
      assert.equal((await exits.status).code, 1, exits.output.text());
      assert.ok(exits.output.has(/already running here|already in use/), exits.output.text());
      const other = runs.find((r) => r !== exits)!;
      await other.waitForReady(1);
    } finally {
      for (const r of runs) await r.cleanup();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- 12. Read-only and full disks ----------------------------------------------------------------

/** Runs `script` in a mount namespace of its own: $0 is `dir`, $1 deno, $2 the CLI, $3 a free port. */
function inMountNamespace(script: string, dir: string) {
  return new Deno.Command("unshare", {
    args: ["-m", "--", "sh", "-c", script, dir, Deno.execPath(), CLI, String(freePort())],
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(30_000),
  }).output();
}

Deno.test("an env file replaced by a link, then by a FIFO: later changes are still seen, and stop ends it", async () => {
  const dir = await makeProject({
    "main.ts": `Deno.serve(() => new Response(Deno.env.get("X") ?? "none"));\n`,
    ".env": "X=1\n",
  });
  const port = freePort();
  const run = new Hotreload(
    ["run", "main.ts", "-A", "--env-file=.env", "--port", String(port)],
    dir,
  );
  try {
    await run.waitForReady(1);
    assert.equal((await httpGet(port)).body, "1");
    // Replaced in one step (a link renamed over it), as a deploy or an editor replaces a file.
    await Deno.symlink("/etc/hostname", `${dir}/.env.new`);
    await Deno.rename(`${dir}/.env.new`, `${dir}/.env`);
    await run.waitForOutput("is a symbolic link");
    await Deno.remove(`${dir}/.env`);
    // Deno's watcher opens the files it reports: a FIFO would block it for good.
    const mkfifo = await new Deno.Command("mkfifo", { args: [`${dir}/.env`] }).output();
    assert.ok(mkfifo.success);
    await run.waitForOutput(".env is a FIFO");
    await Deno.remove(`${dir}/.env`);
    await Deno.writeTextFile(`${dir}/.env`, "X=2\n");
    await waitFor(
      async () => (await httpGet(port)).body === "2",
      "the fixed env file to be served",
    );
    const stop = await runCli(["stop"], dir);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await run.status).code, 0);
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a read-only project directory and a full disk: one line each, nothing left", async () => {
  const dir = await makeProject({ "main.ts": APP });
  try {
    const readOnly = await inMountNamespace(
      `mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && cd "$0" && exec "$1" run -A "$2" run main.ts -N --port "$3" --no-watch`,
      dir,
    );
    const roErr = new TextDecoder().decode(readOnly.stderr).trim();
    assert.equal(readOnly.code, 1, roErr);
    assert.equal(roErr.split("\n").length, 1, roErr);
    assert.match(roErr, /^hotreload: cannot create .*\.hotreload: /);

    const full = await inMountNamespace(
      `mkdir -p "$0/.hotreload" && mount -t tmpfs -o size=4k,mode=0700 tmpfs "$0/.hotreload" &&
       mkdir -m 700 "$0/.hotreload/main" &&
       (dd if=/dev/zero of="$0/.hotreload/main/fill" bs=1k count=64 2>/dev/null; true) &&
       cd "$0" && "$1" run -A "$2" run main.ts -N --port "$3" --no-watch; echo "exit $?";
       ls -a "$0/.hotreload/main"`,
      dir,
    );
    const fullErr = new TextDecoder().decode(full.stderr).trim();
    const fullOut = new TextDecoder().decode(full.stdout);
    assert.match(fullOut, /exit 1/, fullErr);
    assert.equal(fullErr.split("\n").length, 1, fullErr);
    assert.match(fullErr, /^hotreload: cannot (write|create) .*: No space left on device/);
    assert.doesNotMatch(fullOut, /\.tmp/, "no temporary record left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a 65,530-byte line printed without a newline does not eat the ready frame, nor show a nonce", () =>
  withHotreload(
    {
      "main.ts": `await Deno.stderr.write(new TextEncoder().encode("y".repeat(65_530)));
Deno.serve({ onListen() {} }, () => new Response("ok"));
`,
    },
    (port) => serveArgs(port, "--ready-timeout", "5000"),
    async (run, { port }) => {
      await run.waitForReady(1);
      assert.equal((await httpGet(port)).body, "ok");
      assert.doesNotMatch(run.output.text(), /hotreload:[0-9a-f]{32}/, "no nonce in the log");
      assert.doesNotMatch(run.output.text(), /not ready within/);
    },
  ));

Deno.test("the metrics port caps connections, times out idle ones, and warns when beyond loopback", () => {
  const metricsPort = freePort();
  return withHotreload(
    { "main.ts": `Deno.serve(() => new Response("ok"));\n` },
    (port) => serveArgs(port, "--metrics", `0.0.0.0:${metricsPort}`),
    async (run, { dir }) => {
      await run.waitForReady(1);
      assert.equal(
        run.output.matches(/--metrics listens on 0\.0\.0\.0:\d+, beyond loopback/).length,
        1,
      );
      const before = await steadyFdCount(run.pid);
      const idle = await Promise.all(
        Array.from(
          { length: 600 },
          () => Deno.connect({ hostname: "127.0.0.1", port: metricsPort }),
        ),
      );
      try {
        // The cap's worth are taken (before: every one of them), the rest closed at once.
        await waitFor(() => fdCount(run.pid) >= before + MAX_METRICS_CONNECTIONS, "scrapers taken");
        const during = fdCount(run.pid);
        assert.ok(
          during <= before + 20,
          `supervisor fds ${before} → ${during} with 600 idle clients`,
        );
        assert.equal((await runCli(["status"], dir)).code, 0, "the loop still answers");
        // The capped ones were closed at once; the others within the read timeout.
        await waitFor(
          () => fdCount(run.pid) <= before + 2,
          "idle metrics connections closed",
          10_000,
        );
      } finally {
        for (const conn of idle) {
          try {
            conn.close();
          } catch { /* closed */ }
        }
      }
      const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(scrape.status, 200);
      assert.match(await scrape.text(), /hotreload_generation 1/);
    },
  );
});

Deno.test("the node:http --ready-path relay hands on only its own probe, never another local client's request", () =>
  withHotreload(
    {
      "main.mjs": `import { createServer } from "node:http";
createServer((req, res) => {
  if (req.url === "/internal-admin") return res.end("secret");
  // A slow health check: the relay stays up while it runs.
  setTimeout(() => res.end("healthy"), 1500);
}).listen(process.env.PORT);
`,
    },
    (port) => [
      "run",
      "main.mjs",
      "-A",
      "--port",
      String(port),
      "--no-watch",
      "--ready-path",
      "/healthz",
    ],
    async (run, { dir, port }) => {
      let relayPort: number | undefined;
      await waitFor(async () => {
        const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
        const worker = status.children.find((c: { role: string }) => c.role === "worker");
        if (!worker?.pid) return false;
        const ss = await new Deno.Command("ss", { args: ["-Hltnp"], stdout: "piped" }).output();
        const line = new TextDecoder().decode(ss.stdout).split("\n").find((l) =>
          l.includes(`pid=${worker.pid},`) && !l.includes(`:${port} `)
        );
        relayPort = Number(line?.match(/127\.0\.0\.1:(\d+)/)?.[1]) || undefined;
        return relayPort !== undefined;
      }, "the relay of the worker's ready check");
      const answer = await fetch(`http://127.0.0.1:${relayPort}/internal-admin`);
      assert.equal(answer.status, 403);
      assert.notEqual(await answer.text(), "secret");
      await run.waitForReady(1);
    },
  ));
