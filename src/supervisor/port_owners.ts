/**
 * Who listens on a TCP port, from /proc: reusePort lets a second app bind a
 * port another app (of the same user) already listens on, and the kernel
 * then silently splits the traffic between them. The supervisor checks the
 * first port its workers bind, when `--port` does not name it.
 */
import { procStat } from "../child/os.ts";
import { socketsOf } from "../handover/listeners.ts";

/** Inodes of the sockets listening on `port`, IPv4 and IPv6. */
export function listeningInodes(port: number): Set<string> {
  return inodesOn([port], LISTEN);
}

const LISTEN = "0A";
const ESTABLISHED = "01";

/** Inodes of the sockets whose local port is one of `ports`, in `state` (as /proc/net/tcp writes it). */
function inodesOn(ports: readonly number[], state: string): Set<string> {
  const inodes = new Set<string>();
  const hexPorts = ports.map((port) => `:${port.toString(16).toUpperCase().padStart(4, "0")}`);
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local_address is ADDR:PORT in hex; then the state; the inode is field 9.
      if (
        fields.length > 9 && fields[3] === state && fields[9] !== "0" &&
        hexPorts.some((hex) => fields[1].endsWith(hex))
      ) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/**
 * How many established connections on `ports` each of `pids` holds: the
 * clients it serves (a connection still queued on a listener is nobody's).
 */
export function connectionCounts(
  pids: readonly number[],
  ports: readonly number[],
): Map<number, number> {
  const inodes = inodesOn(ports, ESTABLISHED);
  return new Map(
    pids.map((pid) => [pid, socketsOf(pid).filter((socket) => inodes.has(socket.inode)).length]),
  );
}

/** A process that holds a listening socket on the port. */
export interface PortHolder {
  pid: number;
  /** Its command line, when readable. */
  command?: string;
}

/**
 * The first process that listens on `port` and is not ours (`isOurs` gets
 * its pid and process group), or undefined when every listener is ours.
 */
export function foreignListener(
  port: number,
  isOurs: (pid: number, pgid: number) => boolean,
): PortHolder | undefined {
  const inodes = listeningInodes(port);
  if (inodes.size === 0) return undefined;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const pid = Number(entry.name);
    if (!socketsOf(pid).some((socket) => inodes.has(socket.inode))) continue;
    const pgid = Number(procStat(pid)?.[2]);
    if (isOurs(pid, pgid)) continue;
    let command: string | undefined;
    try {
      command = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0").join(" ").trim() ||
        undefined;
    } catch { /* gone */ }
    return { pid, command };
  }
  return undefined;
}
