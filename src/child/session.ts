/**
 * Starting a child in a session (and process group) of its own without
 * stopping the supervisor for a fork.
 *
 * Deno's `detached: true` calls setsid(2) in a pre-exec hook, and a pre-exec
 * hook makes Rust's `Command` fork(2) the whole calling process (copying its
 * page tables) instead of using posix_spawn(3), which starts the child
 * without copying them. Measured side by side on this project's 2-core
 * machine: 7-9 ms per spawn in a Deno process holding 50 MiB, against
 * 0.5-1 ms through util-linux's `setsid` command; in the supervisor, a spare
 * started the moment a new worker was ready held its event loop for 20 ms
 * before that worker was steered to. `setsid` calls setsid(2) and execs the
 * command in the same process (it forks only when it already leads a
 * process group, which a child just started by the supervisor never does):
 * the child keeps its pid, and leads its own session and group as before.
 *
 * Until `setsid` has called setsid(2), a moment after the spawn, the child is
 * still in the supervisor's process group: a group kill finds no group then,
 * and ManagedChild.kill falls back to the child itself.
 *
 * Where `setsid` is missing (a distroless image), or the command is not an
 * executable file named by its path (so that Deno, not `setsid`, says it
 * cannot start), it falls back to `detached: true`.
 *
 * @module
 */
import { isExecutableFile } from "./executable.ts";

/** `setsid`, when the system has it where util-linux puts it. */
const SETSID = ["/usr/bin/setsid", "/bin/setsid"].find(isExecutableFile);

/** How to start a command so that it leads a session of its own. */
export interface SessionLaunch {
  command: string;
  args: string[];
  /** Deno's own setsid (a fork of the caller): only without `setsid`. */
  detached: boolean;
}

/**
 * The command line that starts `command` with `args` in a session of its
 * own: through `setsid` where it can, else with `detached`.
 */
export function inOwnSession(
  command: string,
  args: readonly string[],
  setsid: string | null = SETSID ?? null,
): SessionLaunch {
  if (setsid !== null && command.startsWith("/") && isExecutableFile(command)) {
    return { command: setsid, args: [command, ...args], detached: false };
  }
  return { command, args: [...args], detached: true };
}
