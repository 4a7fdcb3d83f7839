/** Helper commands at a low CPU priority, checked on real processes. */
import assert from "node:assert/strict";
import { AUTOGROUP_NICE, PROCESS_NICE, spawnAtLowPriority } from "./low_priority.ts";

const HAS_AUTOGROUP = (() => {
  try {
    Deno.statSync("/proc/self/autogroup");
    return true;
  } catch {
    return false;
  }
})();

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces). */
function statFields(pid: number): string[] {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

Deno.test({
  name: "a helper command runs at nice 19 in a session of its own, whose autogroup is at nice 10",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const child = spawnAtLowPriority("sleep", { args: ["30"], stdout: "null", stderr: "null" });
    try {
      // `nice` sets its own priority, then execs the command: wait for the exec.
      const deadline = Date.now() + 10_000;
      while (Deno.readTextFileSync(`/proc/${child.pid}/comm`).trim() !== "sleep") {
        if (Date.now() > deadline) throw new Error("the command never started");
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const fields = statFields(child.pid);
      // After the name: state, ppid, pgrp, session, ... nice is the 19th field of the line.
      assert.equal(Number(fields[3]), child.pid, "its own session");
      assert.equal(Number(fields[16]), PROCESS_NICE, "its own nice value");
      if (HAS_AUTOGROUP) {
        assert.match(
          Deno.readTextFileSync(`/proc/${child.pid}/autogroup`),
          new RegExp(`nice ${AUTOGROUP_NICE}\\b`),
          "its session's autogroup",
        );
      }
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  },
});
