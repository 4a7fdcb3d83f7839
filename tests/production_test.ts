/**
 * Production integration: systemd's notify protocol on a real unix datagram
 * socket, Prometheus metrics checked by promtool (Debian's `prometheus`
 * package, set up by the test itself: see outside.ts), and env files re-read on reload.
 */
import assert from "node:assert/strict";
import { freePort, httpGet, runCli, serveArgs, waitFor, withHotreload } from "./helpers.ts";
import { promtool } from "./outside.ts";

const APP = `Deno.serve((_req) => new Response(Deno.env.get("GREETING") ?? "no greeting"));\n`;

/**
 * A real unix datagram socket, received by a small deno process; each datagram
 * is one message. With `read: false` it is bound but never read (its queue,
 * net.unix.max_dgram_qlen, fills after a few datagrams).
 */
async function notifySocket({ read = true } = {}) {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-notify-" });
  const path = `${dir}/notify.sock`;
  const receive = read
    ? `for await (const [data] of socket) {
         console.log(JSON.stringify({ at: performance.now(), text: new TextDecoder().decode(data) }));
       }`
    : "setInterval(() => {}, 1000);";
  const receiver = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--unstable-net",
      `const socket = Deno.listenDatagram({ transport: "unixpacket", path: ${
        JSON.stringify(path)
      } });
       console.log("listening");
       ${receive}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const messages: Array<{ at: number; text: string }> = [];
  let listening = false;
  const reading = (async () => {
    let pending = "";
    for await (const chunk of receiver.stdout.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (line === "listening") listening = true;
        else messages.push(JSON.parse(line));
      }
    }
  })();
  await waitFor(() => listening, "the notify socket");
  return {
    path,
    messages,
    texts: () => messages.map((m) => m.text),
    async close() {
      receiver.kill("SIGKILL");
      await receiver.status;
      await reading;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("sd_notify: READY, RELOADING with MONOTONIC_USEC, READY, STOPPING in that order; WATCHDOG at half of WATCHDOG_USEC", async () => {
  const socket = await notifySocket();
  try {
    await withHotreload(
      { "main.ts": APP },
      (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch", "-w", "2"],
      async (run, { dir }) => {
        await waitFor(() => socket.texts().some((t) => t.startsWith("READY=1")), "READY=1");
        const ready = socket.texts().find((t) => t.startsWith("READY=1"))!;
        assert.match(ready, /STATUS=2 workers ready, generation 1/);
        assert.match(ready, new RegExp(`MAINPID=${run.pid}`));
        assert.equal((await runCli(["reload"], dir)).code, 0);
        await waitFor(
          () => socket.texts().filter((t) => t.startsWith("READY=1")).length === 2,
          "READY=1 after the reload",
        );
        await waitFor(
          () => socket.messages.filter((m) => m.text === "WATCHDOG=1").length >= 4,
          "4 watchdog pings",
        );
        assert.equal((await runCli(["stop"], dir)).code, 0);
        await waitFor(() => socket.texts().some((t) => t.startsWith("STOPPING=1")), "STOPPING=1");
      },
      { env: { NOTIFY_SOCKET: socket.path, WATCHDOG_USEC: "600000" } },
    );
    const order = socket.texts().filter((t) => t !== "WATCHDOG=1" && !t.startsWith("STATUS="))
      .map((t) => t.split("\n")[0]);
    assert.deepEqual(order, ["READY=1", "RELOADING=1", "READY=1", "STOPPING=1"]);
    const reloading = socket.texts().find((t) => t.startsWith("RELOADING=1"))!;
    assert.match(reloading, /MONOTONIC_USEC=\d{4,}/);
    // Pings every 300 ms (half of 600 ms): the median gap, loosely (the machine is shared).
    const pings = socket.messages.filter((m) => m.text === "WATCHDOG=1").map((m) => m.at);
    const gaps = pings.slice(1).map((at, i) => at - pings[i]).sort((a, b) => a - b);
    const median = gaps[Math.floor(gaps.length / 2)];
    assert.ok(median > 150 && median < 600, `median gap ${median} ms`);
  } finally {
    await socket.close();
  }
});

Deno.test("children never see systemd's notify variables", () =>
  withHotreload(
    {
      "main.ts": `Deno.serve((_req) => new Response(String(Deno.env.get("NOTIFY_SOCKET"))));\n`,
    },
    (port) => ["run", "main.ts", "-N", "--allow-env", "--port", String(port), "--no-watch"],
    async (run, { port }) => {
      await run.waitForReady(1);
      assert.equal((await httpGet(port)).body, "undefined");
    },
    { env: { NOTIFY_SOCKET: "/nonexistent/notify.sock" } },
  ));

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /text\/plain; version=0\.0\.4/);
  return await response.text();
}

async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(await promtool(), {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  const decoder = new TextDecoder();
  return { code: out.code, output: decoder.decode(out.stdout) + decoder.decode(out.stderr) };
}

function value(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(series + " "));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

Deno.test("--metrics: valid for promtool, also mid-reload; counters move by the right amounts", async () => {
  await promtool(); // before anything starts: installing it may take a while
  const metricsPort = freePort();
  return withHotreload(
    {
      "main.ts": `await new Promise((r) => setTimeout(r, 300));\n${APP}`,
    },
    (port) => serveArgs(port, "-w", "2", "--max-requests", "20", "--metrics", String(metricsPort)),
    async (run, { dir, port }) => {
      await run.waitForReady(2);
      const before = await scrape(metricsPort);
      assert.deepEqual(await promtoolCheck(before), { code: 0, output: "" });
      // A scrape in the middle of a reload (each new worker takes 300 ms to start).
      const reload = runCli(["reload"], dir);
      await run.waitForOutput("reloading 2 worker(s) to generation 2");
      const during = await scrape(metricsPort);
      assert.deepEqual(await promtoolCheck(during), { code: 0, output: "" });
      assert.equal(value(during, "hotreload_generation"), 2);
      assert.equal((await reload).code, 0);
      const afterReload = await scrape(metricsPort);
      assert.equal(value(afterReload, 'hotreload_reloads_total{outcome="done"}'), 1);
      assert.equal(value(afterReload, 'hotreload_worker_restarts_total{cause="reload"}'), 2);
      assert.equal(value(afterReload, "hotreload_reload_duration_seconds_count"), 1);
      // A crash.
      const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
      Deno.kill(status.children[0].pid, "SIGKILL");
      await waitFor(
        async () =>
          value(await scrape(metricsPort), 'hotreload_worker_restarts_total{cause="crash"}') === 1,
        "a crash counted",
      );
      // A recycle (--max-requests 20).
      await waitFor(async () => {
        await httpGet(port);
        return value(
          await scrape(metricsPort),
          'hotreload_worker_restarts_total{cause="recycle"}',
        ) >= 1;
      }, "a recycle counted");
      const after = await scrape(metricsPort);
      assert.deepEqual(await promtoolCheck(after), { code: 0, output: "" });
      assert.equal(value(after, 'hotreload_worker_restarts_total{cause="reload"}'), 2);
      assert.equal(value(after, 'hotreload_worker_restarts_total{cause="crash"}'), 1);
      assert.equal(value(after, 'hotreload_workers{state="ready"}') >= 1, true);
      assert.match(
        after,
        /hotreload_worker_requests_total\{role="worker",id="\d",pid="\d+",generation="\d+"\} \d+/,
      );
      assert.match(after, /hotreload_build_info\{version="[^"]+",deno="[^"]+"\} 1/);
      assert.match(after, /hotreload_handover_info\{mode="(ebpf|kernel|none)"\} 1/);
    },
  );
});

Deno.test("--env-file: an edit reloads with the new value; a broken file keeps the old workers", () =>
  withHotreload(
    { "main.ts": APP, ".env": "GREETING=hello\n" },
    (port) => ["run", "main.ts", "-N", "--allow-env", "--env-file", "--port", String(port)],
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      assert.equal((await httpGet(port)).body, "hello");
      await Deno.writeTextFile(`${dir}/.env`, "GREETING=bonjour\n");
      await waitFor(async () => (await httpGet(port)).body === "bonjour", "the new value");
      await Deno.writeTextFile(`${dir}/.env`, 'GREETING="broken\n');
      await run.waitForOutput(
        /reload aborted: \.env: line 1: the " quote opened for GREETING is never closed/,
      );
      assert.equal((await httpGet(port)).body, "bonjour", "the old workers keep serving");
      const reload = await runCli(["reload"], dir);
      assert.equal(reload.code, 1);
      assert.match(reload.stderr, /\.env: line 1/);
    },
  ));

Deno.test("sd_notify never waits: a notify socket nobody reads does not wedge the supervisor", async () => {
  const socket = await notifySocket({ read: false });
  try {
    await withHotreload(
      { "main.ts": APP },
      (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch", "--settle", "0"],
      async (run, { dir: project }) => {
        await run.waitForReady(1);
        // READY plus 3 datagrams a reload: the queue is full long before the 8th.
        for (let i = 0; i < 8; i++) {
          const reload = await runCli(["reload"], project);
          assert.equal(reload.code, 0, reload.stderr);
        }
        assert.equal((await runCli(["status"], project)).code, 0);
        assert.equal(run.output.matches(/NOTIFY_SOCKET could not be sent/).length, 1);
        run.signal("SIGTERM");
        assert.equal((await run.status).code, 0, "SIGTERM still stops it");
      },
      { env: { NOTIFY_SOCKET: socket.path } },
    );
  } finally {
    await socket.close();
  }
});

Deno.test("--env-file: a link, a FIFO or a huge file is refused, never read, never echoed", () =>
  withHotreload(
    { "main.ts": APP, ".env": "GREETING=hello\n", "secret": "root:$6$supersecret:19000\n" },
    (port) => [
      "run",
      "main.ts",
      "-N",
      "--allow-env",
      "--env-file",
      "--port",
      String(port),
      "--no-watch",
    ],
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      const refused = async (pattern: RegExp) => {
        const reload = await runCli(["reload"], dir);
        assert.equal(reload.code, 1, reload.stderr);
        assert.match(reload.stderr, pattern);
        assert.equal((await httpGet(port)).body, "hello", "the old workers keep serving");
      };
      await Deno.remove(`${dir}/.env`);
      await Deno.symlink(`${dir}/secret`, `${dir}/.env`);
      await refused(/\.env: is a symbolic link/);
      await Deno.remove(`${dir}/.env`);
      const mkfifo = await new Deno.Command("mkfifo", { args: [`${dir}/.env`] }).output();
      assert.ok(mkfifo.success);
      await refused(/\.env: is not a regular file/);
      assert.equal((await runCli(["status"], dir)).code, 0, "the loop is not wedged");
      await Deno.remove(`${dir}/.env`);
      await Deno.writeTextFile(`${dir}/.env`, "A=" + "x".repeat(2 << 20) + "\n");
      await refused(/\.env: is \d+ bytes; an env file may hold at most 1048576/);
      await Deno.writeTextFile(`${dir}/.env`, "root:$6$supersecret:19000\n");
      await refused(/\.env: line 1: not KEY=value$/m);
      assert.doesNotMatch(
        run.output.text(),
        /supersecret/,
        "the file's text never reaches the log",
      );
    },
  ));

Deno.test("--env-file: a file removed and written again is still watched", () =>
  withHotreload(
    { "main.ts": APP, ".env": "GREETING=one\n", ".gitignore": ".env\n" },
    (port) => ["run", "main.ts", "-N", "--allow-env", "--env-file", "--port", String(port)],
    async (run, { dir, port }) => {
      await run.waitForReady(1);
      assert.equal((await httpGet(port)).body, "one");
      await Deno.remove(`${dir}/.env`);
      await run.waitForOutput(/\.env/);
      await Deno.writeTextFile(`${dir}/.env`, "GREETING=two\n");
      await waitFor(async () => (await httpGet(port)).body === "two", "the rewritten file's value");
      await Deno.writeTextFile(`${dir}/.env`, "GREETING=three\n");
      await waitFor(async () => (await httpGet(port)).body === "three", "and the next edit's");
    },
  ));

Deno.test("sd_notify through an upgrade (a takeover started by the supervisor): the successor says MAINPID= before the old one exits, the old one never says STOPPING=1; a failed one says nothing", async () => {
  const socket = await notifySocket();
  try {
    await withHotreload(
      { "main.ts": APP },
      (port) => ["run", "main.ts", "-N", "--port", String(port), "--no-watch", "-w", "1"],
      async (a, { dir }) => {
        await waitFor(() => socket.texts().some((t) => t.startsWith("READY=1")), "READY=1");
        await Deno.writeTextFile(`${dir}/main.ts`, `throw new Error("cannot start");\n`);
        const failed = await runCli(["upgrade"], dir);
        assert.equal(failed.code, 1, failed.stderr);
        assert.equal(socket.texts().length, 1, "a failed takeover says nothing to systemd");
        await Deno.writeTextFile(`${dir}/main.ts`, APP);
        const upgraded = await runCli(["upgrade"], dir);
        assert.equal(upgraded.code, 0, upgraded.stderr);
        const successor = Number(upgraded.stderr.match(/taken over by supervisor pid (\d+)/)?.[1]);
        const texts = socket.texts().map((t) => t.split("\n"));
        const mainPids = texts.flatMap((lines) =>
          lines.filter((line) => line.startsWith("MAINPID="))
        );
        assert.deepEqual(mainPids, [`MAINPID=${a.pid}`, `MAINPID=${successor}`]);
        assert.ok(!texts.some((lines) => lines.includes("STOPPING=1")), "no STOPPING=1");
        assert.equal((await runCli(["stop"], dir)).code, 0);
        await waitFor(() => socket.texts().some((t) => t.startsWith("STOPPING=1")), "STOPPING=1");
      },
      { env: { NOTIFY_SOCKET: socket.path } },
    );
  } finally {
    await socket.close();
  }
});
