/**
 * The established TCP sockets on some local ports, asked of the kernel over
 * netlink (`sock_diag`, what `ss` uses) through libc (FFI, as
 * handover/linux.ts does): the kernel skips every socket in another state
 * before it writes a byte, so a host's TIME_WAIT sockets, tens of thousands
 * after a few seconds of clients that open a new connection per request,
 * cost nothing, where /proc/net/tcp writes each as a line of text
 * (port_owners.ts keeps that as the fallback).
 *
 * One `socket(AF_NETLINK, NETLINK_SOCK_DIAG)` per count, a dump request per
 * address family (`inet_diag_req_v2`: TCP, the ESTABLISHED state only), and
 * the answers read without blocking (the kernel writes each part of a dump
 * while the previous one is read) until NLMSG_DONE.
 *
 * @module
 */

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const NLM_F_DUMP = 0x300;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const MSG_DONTWAIT = 0x40;
const IPPROTO_TCP = 6;
const TCP_ESTABLISHED = 1;
/** struct nlmsghdr */
const HEADER = 16;
/** struct inet_diag_req_v2 */
const REQUEST = 56;
/** struct inet_diag_msg: family, state, timer, retrans, then the socket id (sport at 4, big-endian) … inode at 68. */
const MESSAGE = 72;
const SPORT_AT = 4;
const INODE_AT = 68;
/** A dump part is at most a page or two (netlink's skb); room for several. */
const RECEIVE_BUFFER = 64 * 1024;
/** Reads per family at most: a runaway answer ends as a failure, never as a hang. */
const MAX_READS = 100_000;

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  close: { parameters: ["i32"], result: "i32" },
} as const;

let lib: Deno.DynamicLibrary<typeof SYMBOLS> | null | undefined;

/** libc, opened once; null off Linux or without FFI permission. */
function libc(): Deno.DynamicLibrary<typeof SYMBOLS> | null {
  if (lib !== undefined) return lib;
  lib = null;
  if (Deno.build.os !== "linux") return lib;
  if (Deno.permissions.querySync({ name: "ffi" }).state !== "granted") return lib;
  try {
    lib = Deno.dlopen("libc.so.6", SYMBOLS);
  } catch { /* no libc.so.6 (musl): /proc instead */ }
  return lib;
}

/** The dump request for TCP sockets of `family` in the ESTABLISHED state. */
function request(family: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(HEADER + REQUEST));
  const view = new DataView(bytes.buffer);
  view.setUint32(0, bytes.length, true); // nlmsg_len
  view.setUint16(4, SOCK_DIAG_BY_FAMILY, true); // nlmsg_type
  view.setUint16(6, NLM_F_REQUEST | NLM_F_DUMP, true); // nlmsg_flags
  view.setUint32(8, 1, true); // nlmsg_seq
  bytes[HEADER] = family; // sdiag_family
  bytes[HEADER + 1] = IPPROTO_TCP; // sdiag_protocol
  view.setUint32(HEADER + 4, 1 << TCP_ESTABLISHED, true); // idiag_states
  return bytes;
}

/**
 * Adds to `inodes` those of the established sockets of `family` whose local
 * port is one of `ports`; false when the kernel's answer could not be had
 * or read whole.
 */
function dump(
  c: Deno.DynamicLibrary<typeof SYMBOLS>,
  fd: number,
  family: number,
  ports: Set<number>,
  inodes: Set<string>,
): boolean {
  const ask = request(family);
  if (Number(c.symbols.send(fd, ask, BigInt(ask.length), 0)) !== ask.length) return false;
  const buffer = new Uint8Array(new ArrayBuffer(RECEIVE_BUFFER));
  const view = new DataView(buffer.buffer);
  for (let reads = 0; reads < MAX_READS; reads++) {
    const got = Number(c.symbols.recv(fd, buffer, BigInt(buffer.length), MSG_DONTWAIT));
    if (got <= 0) return false;
    for (let at = 0; at + HEADER <= got;) {
      const length = view.getUint32(at, true);
      const type = view.getUint16(at + 4, true);
      if (length < HEADER || at + length > got) return false;
      if (type === NLMSG_DONE) return true;
      if (type === NLMSG_ERROR) return false;
      if (type === SOCK_DIAG_BY_FAMILY && length >= HEADER + MESSAGE) {
        const message = at + HEADER;
        if (ports.has(view.getUint16(message + SPORT_AT, false))) {
          const inode = view.getUint32(message + INODE_AT, true);
          if (inode !== 0) inodes.add(String(inode));
        }
      }
      at += (length + 3) & ~3; // NLMSG_ALIGN
    }
  }
  return false;
}

/**
 * Inodes of the established TCP sockets (IPv4 and IPv6) whose local port
 * is one of `ports`; undefined when netlink cannot be used here (then ask
 * /proc).
 */
export function establishedInodes(ports: readonly number[]): Set<string> | undefined {
  const c = libc();
  if (!c) return undefined;
  const fd = c.symbols.socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return undefined;
  try {
    const inodes = new Set<string>();
    const wanted = new Set(ports);
    for (const family of [AF_INET, AF_INET6]) {
      if (!dump(c, fd, family, wanted, inodes)) return undefined;
    }
    return inodes;
  } finally {
    c.symbols.close(fd);
  }
}
