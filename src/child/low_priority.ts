/**
 * A helper command (the module-graph pass's `deno info`) at a low CPU
 * priority, so that the workers serving requests come first.
 *
 * `nice -n 19` alone does not do that on most Linux systems: with the
 * kernel's autogroup scheduling (`kernel.sched_autogroup_enabled=1`, the
 * default of Debian's, Ubuntu's and Fedora's kernels) the CPU is first shared
 * out between sessions, and only then between the processes of a session by
 * their nice values. Every worker runs in a session of its own (os.ts,
 * session.ts: through `setsid`), so a niced command in the supervisor's
 * session weighed as much as a whole worker. So the command gets a session
 * of its own, and that session's autogroup a nice value too
 * (`/proc/<pid>/autogroup`; raising one needs no privilege). Where autogroup
 * is off, or the processes sit in cgroups of their own, the process's own
 * nice value is the one that counts, and it is the lowest there is.
 *
 * The autogroup's is 10, not 19: a session at 19 weighs 1/70 of a worker's
 * (the kernel's weights: 15 against 1024), so with every core busy a graph
 * pass of 0.2 s of CPU would take tens of seconds; at 10 (110) it yields
 * about nine tenths of what it would take from the workers.
 *
 * Measured (docs/benchmarks.md, "Latency and errors while reloading"): while
 * wrk kept both cores busy, an edit's graph pass in the supervisor's session
 * took CPU from the workers answering the hand-over.
 *
 * @module
 */

/** The command's own nice value: the lowest priority. */
export const PROCESS_NICE = 19;

/** Its session's autogroup's nice value (see the module text for why not 19). */
export const AUTOGROUP_NICE = 10;

/** `nice`, when the system has it where coreutils put it. */
const NICE = ["/usr/bin/nice", "/bin/nice"].find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/**
 * Starts `command` in a session of its own at a low priority (see the module
 * text). Its output is the caller's to read, and it the caller's to end.
 */
export function spawnAtLowPriority(
  command: string,
  options: Omit<Deno.CommandOptions, "detached">,
): Deno.ChildProcess {
  const args = options.args ?? [];
  const child = new Deno.Command(NICE ?? command, {
    ...options,
    args: NICE ? ["-n", String(PROCESS_NICE), command, ...args] : args,
    detached: true,
  }).spawn();
  try {
    // In practice before `nice` has exec'd the command, which is one exec away.
    Deno.writeTextFileSync(`/proc/${child.pid}/autogroup`, String(AUTOGROUP_NICE));
  } catch {
    // No autogroup here (another kernel, another OS), or the command ended already.
  }
  return child;
}
