/** A child in a session of its own, started through `setsid` or Deno's `detached`, on real processes. */
import assert from "node:assert/strict";
import { inOwnSession } from "./session.ts";
import { type Os, REAL_OS, spawnPiped } from "./os.ts";
import { type ChildSpec, ManagedChild } from "./child.ts";

/** Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ... */
function statFields(pid: number): string[] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/** Starts `sleep` as a worker is started, waits for its exec, and returns what it runs as. */
async function startedSleep(): Promise<
  { pid: number; pgrp: number; session: number; exe: string }
> {
  const sleep = ["/usr/bin/sleep", "/bin/sleep"].find((path) => {
    try {
      return Deno.statSync(path).isFile;
    } catch {
      return false;
    }
  })!;
  const child = REAL_OS.spawn(sleep, { args: ["30"], env: {}, cwd: "/" });
  try {
    const deadline = Date.now() + 10_000;
    // Through `setsid`, the pid runs `setsid` for a moment, then execs the command.
    while (Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim() !== "sleep") {
      if (Date.now() > deadline) throw new Error("sleep never started");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const fields = statFields(child.pid);
    return {
      pid: child.pid,
      pgrp: Number(fields[2]),
      session: Number(fields[3]),
      exe: Deno.readLinkSync(`/proc/${child.pid}/exe`),
    };
  } finally {
    REAL_OS.signal(child.pid, "SIGKILL", false);
    await child.status;
    await child.stdout.cancel();
    await child.stderr.cancel();
  }
}

Deno.test({
  name: "a child leads its own session and process group, under the pid the supervisor was given",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const started = await startedSleep();
    assert.equal(started.session, started.pid, "its own session");
    assert.equal(started.pgrp, started.pid, "its own process group");
    assert.match(started.exe, /\/sleep$/, "the command itself runs under that pid");
  },
});

Deno.test("an executable named by its path goes through setsid; Deno's detached otherwise", () => {
  const deno = Deno.execPath();
  assert.deepEqual(inOwnSession(deno, ["run", "x.ts"], "/usr/bin/setsid"), {
    command: "/usr/bin/setsid",
    args: [deno, "run", "x.ts"],
    detached: false,
  });
  // No setsid on this system (a distroless image): Deno's own setsid, after a fork.
  assert.deepEqual(inOwnSession(deno, ["run"], null), {
    command: deno,
    args: ["run"],
    detached: true,
  });
  // A missing command is Deno's to report (spawn throws, the slot retries), not setsid's.
  assert.equal(inOwnSession("/nonexistent/deno", [], "/usr/bin/setsid").detached, true);
  assert.equal(inOwnSession("deno", [], "/usr/bin/setsid").detached, true);
});

Deno.test({
  name: "a child outlives a supervisor that dies of an uncaught error, as with Deno's detached",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const script = await Deno.makeTempFile({ suffix: ".ts" });
    const os = new URL("./os.ts", import.meta.url).href;
    // Without unref, Deno SIGKILLs a child whose handle its dying runtime drops.
    await Deno.writeTextFile(
      script,
      `import { REAL_OS } from ${JSON.stringify(os)};\n` +
        `const child = REAL_OS.spawn("/bin/sh", { args: ["-c", "sleep 30; :"], env: {}, cwd: "/" });\n` +
        `console.log(child.pid);\n` +
        `setTimeout(() => { throw new Error("the supervisor fails"); }, 100);\n`,
    );
    const { stdout, code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", script],
      stderr: "null",
    }).output();
    await Deno.remove(script);
    const pid = Number(new TextDecoder().decode(stdout).trim());
    assert.ok(pid > 0, "the script printed its child's pid");
    assert.notEqual(code, 0, "the script died of its error");
    try {
      const state = statFields(pid)[0];
      assert.notEqual(state, "Z");
      assert.equal(Deno.readTextFileSync(`/proc/${pid}/comm`).trim(), "sh");
    } finally {
      try {
        Deno.kill(-pid, "SIGKILL"); // its group: sh and its sleep
      } catch { /* gone */ }
    }
  },
});

Deno.test({
  name: "a kill reaches a child that does not lead its own group yet (setsid has not run)",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // The real OS, but its children stay in our group: as one started through `setsid` is
    // until `setsid` calls setsid(2), so the group kill finds no group.
    const ungrouped: Os = {
      ...REAL_OS,
      spawn: (command, options) => spawnPiped(command, options, false),
    };
    const exited = Promise.withResolvers<Deno.CommandStatus>();
    const spec: ChildSpec = {
      role: "process",
      id: "sleeper#0",
      generation: 1,
      label: "sleeper",
      command: "/bin/sh",
      args: ["-c", "sleep 30; :"],
      env: {},
      cwd: "/",
      settings: {},
    };
    const child = ManagedChild.spawn(
      spec,
      { message() {}, exit: (_child, status) => exited.resolve(status) },
      () => performance.now(),
      ungrouped,
    );
    const pid = child.pid;
    child.kill();
    const status = await exited.promise;
    assert.equal(status.signal, "SIGKILL", `pid ${pid} was killed`);
  },
});
