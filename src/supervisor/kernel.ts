/** Kernel settings that change what a reload costs. */

/**
 * `net.ipv4.tcp_migrate_req`: 1 moves connections still queued on a closing
 * reusePort listener to the other listeners; 0 resets them. Undefined when the
 * setting cannot be read (not Linux, or an old kernel).
 */
export function readTcpMigrateReq(): number | undefined {
  try {
    return Number(Deno.readTextFileSync("/proc/sys/net/ipv4/tcp_migrate_req").trim());
  } catch {
    return undefined;
  }
}

/** The one-line hint printed when reloads may reset a few queued connections. */
export const TCP_MIGRATE_REQ_HINT =
  "net.ipv4.tcp_migrate_req is 0: when a draining worker closes its listener, connections still " +
  "waiting in its accept queue are reset (a few per thousand under heavy load). Turn it on with " +
  "`sysctl -w net.ipv4.tcp_migrate_req=1` so the kernel hands them to the other workers";
