/**
 * Who listens on a TCP port, from /proc: reusePort lets a second app bind a
 * port another app (of the same user) already listens on, and the kernel
 * then silently splits the traffic between them. The supervisor checks the
 * first port its workers bind, when `--port` does not name it.
 */
import { procStat } from "../child/os.ts";
import { socketsOf } from "../handover/listeners.ts";
import { establishedInodes } from "./sock_diag.ts";

/** Inodes of the sockets listening on `port`, IPv4 and IPv6. */
export function listeningInodes(port: number): Set<string> {
  return inodesOn([port], LISTEN);
}

const LISTEN = "0A";
const ESTABLISHED = "01";

/**
 * Inodes of the sockets whose local port is one of `ports`, in `state` (as
 * /proc/net/tcp writes it). A busy host's table holds tens of thousands of
 * lines (TIME_WAIT above all: 14,000 to 42,000 here after 4-5 s of wrk with
 * a new connection per request): each line's state and port are read at
 * their fixed places (net/ipv4/tcp_ipv4.c, tcp_ipv6.c: `%4d: ADDR:PORT
 * ADDR:PORT ST ...`), and only a matching line is split. Measured on a
 * 14,000-line table: a count took 34-38 ms, against 70 when every line was
 * split; 23 ms of it is the kernel writing the table.
 */
function inodesOn(ports: readonly number[], state: string): Set<string> {
  const inodes = new Set<string>();
  const hexPorts = new Set(
    ports.map((port) => port.toString(16).toUpperCase().padStart(4, "0")),
  );
  for (const [table, addressLength] of [["/proc/net/tcp", 8], ["/proc/net/tcp6", 32]] as const) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    let start = text.indexOf("\n") + 1; // past the header
    while (start > 0 && start < text.length) {
      const end = text.indexOf("\n", start);
      const lineEnd = end < 0 ? text.length : end;
      const local = text.indexOf(": ", start) + 2;
      if (local > 1 && local < lineEnd) {
        const port = text.slice(local + addressLength + 1, local + addressLength + 5);
        const at = local + 2 * addressLength + 12;
        if (text.slice(at, at + 2) === state && hexPorts.has(port)) {
          // The inode is field 9 (after sl, local, remote, st, tx:rx, tr:when, retrnsmt, uid, timeout).
          const inode = text.slice(start, lineEnd).trim().split(/\s+/)[9];
          if (inode !== undefined && inode !== "0") inodes.add(inode);
        }
      }
      start = end + 1;
    }
  }
  return inodes;
}

/** Inodes of the established sockets on `ports`, from /proc/net/tcp{,6}. */
export function procEstablishedInodes(ports: readonly number[]): Set<string> {
  return inodesOn(ports, ESTABLISHED);
}

/**
 * The established connections on `ports` each of `pids` holds, by socket
 * inode: the clients it serves (a connection still queued on a listener is
 * nobody's). An inode names one connection for as long as it lasts.
 */
export function establishedConnections(
  pids: readonly number[],
  ports: readonly number[],
): Map<number, string[]> {
  // Netlink's count skips the host's other sockets (sock_diag.ts); /proc lists every one.
  const inodes = establishedInodes(ports) ?? procEstablishedInodes(ports);
  return new Map(
    pids.map((pid) => [
      pid,
      socketsOf(pid).map((socket) => socket.inode).filter((inode) => inodes.has(inode)),
    ]),
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
