/**
 * Finds a worker's listening socket for a port: the LISTEN rows of
 * `/proc/net/tcp` and `/proc/net/tcp6` give the socket inodes listening on
 * the port (and their local address), and `/proc/<pid>/fd/*` links read
 * `socket:[inode]`. Both are read from this process's network namespace,
 * which is the workers' own.
 *
 * @module
 */

/** A listening socket: its inode and its local address (hex, as /proc shows it). */
export interface ListenRow {
  inode: number;
  address: string;
}

const LISTEN = "0A";

/**
 * The LISTEN rows for `port`. The kernel lists listening sockets before any
 * other, so reading stops at the first row in another state: on a host with
 * many connections, this reads a few lines, not all of them.
 */
export function listenRows(port: number): ListenRow[] {
  const rows: ListenRow[] = [];
  const portHex = port.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    for (const line of listeningLines(file)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      const [address, rowPort] = fields[1].split(":");
      if (rowPort === portHex) rows.push({ inode: Number(fields[9]), address });
    }
  }
  return rows;
}

/** The LISTEN lines of one /proc/net table, read until the first line in another state. */
function* listeningLines(path: string): Generator<string> {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path);
  } catch {
    return; // no IPv6, or no /proc
  }
  try {
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(64 * 1024);
    let pending = "";
    let header = true;
    while (true) {
      const n = file.readSync(buffer);
      if (n === null || n === 0) return;
      pending += decoder.decode(buffer.subarray(0, n), { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const line of lines) {
        if (header) {
          header = false;
          continue;
        }
        if (line.trim().split(/\s+/)[3] !== LISTEN) return;
        yield line;
      }
    }
  } finally {
    file.close();
  }
}

/** The fd numbers of `pid` whose socket inode is one of `inodes`, with that inode. */
export function socketFds(
  pid: number,
  inodes: ReadonlySet<number>,
): { fd: number; inode: number }[] {
  const found: { fd: number; inode: number }[] = [];
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync(`/proc/${pid}/fd`);
  } catch {
    return found; // gone
  }
  for (const entry of entries) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
    } catch {
      continue; // closed meanwhile
    }
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match && inodes.has(Number(match[1]))) {
      found.push({ fd: Number(entry.name), inode: Number(match[1]) });
    }
  }
  return found;
}
