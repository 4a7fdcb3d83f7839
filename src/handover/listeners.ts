/**
 * Finds a worker's listening socket for a port: its socket fds, from the
 * `/proc/<pid>/fd` links that read `socket:[inode]`, in the order it opened
 * them (a server's listener comes before the connections it accepts), each
 * duplicated and asked whether it listens, and where. Nothing reads
 * `/proc/net/tcp`: the kernel walks every hash bucket to list it (about 4 ms
 * per file here, even when it holds two lines).
 *
 * @module
 */
import type { Linux } from "./linux.ts";

/** A worker's listener: a duplicate we own (close it), and its address (family and bytes). */
export interface FoundListener {
  socket: number;
  address: string;
}

/**
 * The worker's first TCP/IP listener on `port` (of `group`'s address when it
 * has several, as IPv4 and IPv6), or undefined. `pidfd` is the worker's.
 */
export function findListener(
  linux: Linux,
  pid: number,
  pidfd: number,
  port: number,
  group?: string,
): FoundListener | undefined {
  let fallback: FoundListener | undefined;
  for (const { fd } of socketsOf(pid)) {
    let socket: number;
    try {
      socket = linux.pidfdGetfd(pidfd, fd);
    } catch {
      continue; // closed meanwhile
    }
    const listener = linux.listener(socket);
    if (listener?.port === port && (group === undefined || listener.address === group)) {
      if (fallback) linux.close(fallback.socket);
      return { socket, address: listener.address };
    }
    if (listener?.port === port && !fallback) fallback = { socket, address: listener.address };
    else linux.close(socket);
  }
  return fallback;
}

/** The sockets of `pid`: fd and inode, lowest fd first (none when it is gone or not ours to read). */
export function socketsOf(pid: number): Array<{ fd: number; inode: string }> {
  const sockets: Array<{ fd: number; inode: string }> = [];
  try {
    for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
      try {
        const link = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
        if (link.startsWith("socket:[")) {
          sockets.push({ fd: Number(entry.name), inode: link.slice(8, -1) });
        }
      } catch { /* closed meanwhile */ }
    }
  } catch { /* gone */ }
  return sockets.sort((a, b) => a.fd - b.fd);
}
