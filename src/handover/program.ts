/**
 * The steering program: a `BPF_PROG_TYPE_SK_REUSEPORT` program, attached as
 * `BPF_SK_REUSEPORT_SELECT_OR_MIGRATE` to the workers' reuseport group. For
 * every new connection, and for every connection still queued on a listener
 * that closes, it picks a listener of a worker that should take new
 * connections. Two maps: `listeners` (REUSEPORT_SOCKARRAY), where each such
 * worker's socket keeps one key while it serves (the kernel lets a socket sit
 * in one slot only), and `slots` (ARRAY of u32): slots[0] = n, and
 * slots[1..n] = the listeners' keys.
 *
 * ```c
 * u32 *n = lookup(&slots, 0);
 * if (!n || !*n) return SK_PASS;              // nothing steered: the kernel's own choice
 * u32 *turn = lookup(&slots, ROUND_ROBIN);     // one after another (ctx->hash if no turn)
 * u32 i = (turn ? (*turn)++ : ctx->hash) % *n;
 * for (int try = 0; try < 2; try++) {          // unrolled: a hole (a worker just died)
 *   u32 *key = lookup(&slots, i + 1);          // sends the connection to the next one
 *   if (!key) return SK_PASS;
 *   if (bpf_sk_select_reuseport(ctx, &listeners, key, 0) == 0) return SK_PASS;
 *   i = (i + 1) % *n;
 * }
 * return SK_PASS;
 * ```
 *
 * New connections go to the serving workers in turn (round robin; the
 * turn is read and written without a lock: two CPUs may take the same
 * turn, which costs nothing), so after a reload the clients that reconnect
 * spread evenly, not as a hash of their ports happens to fall.
 *
 * With `--sticky`, the spread is by the client's address instead, so every
 * connection from one address picks the same slot:
 *
 * ```c
 * u32 h = ctx->hash;                           // (replaces the turn above)
 * if (ctx->eth_protocol == htons(ETH_P_IP)) {  // the source address, from the IP header
 *   u32 a; if (!bpf_skb_load_bytes_relative(ctx, 12, &a, 4, BPF_HDR_START_NET)) h = a;
 * } else if (ctx->eth_protocol == htons(ETH_P_IPV6)) {
 *   u32 a[4]; if (!bpf_skb_load_bytes_relative(ctx, 8, a, 16, BPF_HDR_START_NET))
 *     h = a[0] ^ a[1] ^ a[2] ^ a[3];
 * } else goto spread;                          // no packet (a queued connection moving on)
 * h *= 0x9e3779b1; h ^= h >> 16;               // mix, so that "% n" sees every bit
 * spread: ...
 * ```
 *
 * The supervisor then fills the slots as a table of buckets that keep their
 * worker while it serves (steering.ts).
 *
 * It always returns SK_PASS: when no listener was selected, the kernel falls
 * back to its hash over every live listener of the group, so a wrong or empty
 * map is never worse than no program. Built by hand (no compiler on the
 * machines that run hotreload), encoded below.
 *
 * @module
 */

/** `struct bpf_insn`: 8 bytes; a 64-bit immediate load takes two. */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
}

// Opcode parts (linux/bpf_common.h, linux/bpf.h).
const LD = 0x00, LDX = 0x01, STX = 0x03, ALU = 0x04, JMP = 0x05, ALU64 = 0x07;
const W = 0x00, DW = 0x18, IMM = 0x00, MEM = 0x60;
const K = 0x00, X = 0x08;
const ADD = 0x00, MUL = 0x20, RSH = 0x70, MOD = 0x90, XOR = 0xa0, MOV = 0xb0;
const JA = 0x00, JEQ = 0x10, JNE = 0x50, CALL = 0x80, EXIT = 0x90;

/** `src` of a 64-bit immediate load whose `imm` is a map's fd. */
const PSEUDO_MAP_FD = 1;
/** Helper ids (enum bpf_func_id). */
export const HELPER_MAP_LOOKUP_ELEM = 1;
export const HELPER_SK_SELECT_REUSEPORT = 82;
export const HELPER_SKB_LOAD_BYTES_RELATIVE = 68;
/** Offsets in `struct sk_reuseport_md`: `eth_protocol`, `hash`. */
export const CTX_ETH_PROTOCOL = 20;
export const CTX_HASH = 32;
/** `skb->protocol` as the program reads it (big-endian ETH_P_IP, ETH_P_IPV6, on little-endian). */
const ETH_P_IP_BE = 0x0008, ETH_P_IPV6_BE = 0xdd86;
/** Offsets relative to the network header: the IPv4 and IPv6 source address. */
const IPV4_SOURCE = 12, IPV6_SOURCE = 8;
const BPF_HDR_START_NET = 1;
/** The slot that holds the round-robin turn (after slots[0] = n and the MAX_STEERED keys). */
export const ROUND_ROBIN_SLOT = 1025;
/** The golden-ratio multiplier (as a signed 32-bit immediate). */
const GOLDEN = 0x9e3779b1 | 0;
/** Return value: use the selected listener, or, if none was, the kernel's own pick. */
export const SK_PASS = 1;

const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R6 = 6, R7 = 7, R8 = 8, R9 = 9, FP = 10;

const insn = (code: number, dst: number, src: number, off: number, imm: number): Insn => ({
  code,
  dst,
  src,
  off,
  imm,
});
const mov = (dst: number, src: number) => insn(ALU64 | MOV | X, dst, src, 0, 0);
const movImm = (dst: number, imm: number) => insn(ALU64 | MOV | K, dst, 0, 0, imm);
const addImm = (dst: number, imm: number) => insn(ALU64 | ADD | K, dst, 0, 0, imm);
const addImm32 = (dst: number, imm: number) => insn(ALU | ADD | K, dst, 0, 0, imm);
const addReg32 = (dst: number, src: number) => insn(ALU | ADD | X, dst, src, 0, 0);
const mod32 = (dst: number, src: number) => insn(ALU | MOD | X, dst, src, 0, 0);
const mulImm32 = (dst: number, imm: number) => insn(ALU | MUL | K, dst, 0, 0, imm);
const rshImm32 = (dst: number, imm: number) => insn(ALU | RSH | K, dst, 0, 0, imm);
const xor32 = (dst: number, src: number) => insn(ALU | XOR | X, dst, src, 0, 0);
const load32 = (dst: number, src: number, off: number) => insn(LDX | MEM | W, dst, src, off, 0);
const store32 = (dst: number, off: number, src: number) => insn(STX | MEM | W, dst, src, off, 0);
const jumpIfZero = (reg: number, off: number) => insn(JMP | JEQ | K, reg, 0, off, 0);
const call = (helper: number) => insn(JMP | CALL, 0, 0, 0, helper);
const exit = () => insn(JMP | EXIT, 0, 0, 0, 0);
/** `dst = map` (two slots: the map's fd as a pseudo immediate). */
const loadMap = (dst: number, fd: number) => [
  insn(LD | IMM | DW, dst, PSEUDO_MAP_FD, 0, fd),
  insn(0, 0, 0, 0, 0),
];

/** `r0 = bpf_map_lookup_elem(&slots, &r9)`: the key goes through the stack (6 slots). */
const lookupSlot = (slotsFd: number) => [
  store32(FP, -4, R9),
  mov(R2, FP),
  addImm(R2, -4),
  ...loadMap(R1, slotsFd),
  call(HELPER_MAP_LOOKUP_ELEM),
];

/**
 * A jump to a label, resolved by {@link assemble}: when `ifZero` is 0, when
 * `ifNonZero` is not, when `reg` equals `imm` (`ifEqual`), or always.
 */
type Jump =
  | { ifZero: number; to: string }
  | { ifNonZero: number; to: string }
  | { ifEqual: [reg: number, imm: number]; to: string }
  | { always: true; to: string };

function jump(line: Jump, offset: number): Insn {
  if ("ifZero" in line) return jumpIfZero(line.ifZero, offset);
  if ("ifNonZero" in line) return insn(JMP | JNE | K, line.ifNonZero, 0, offset, 0);
  if ("ifEqual" in line) return insn(JMP | JEQ | K, line.ifEqual[0], 0, offset, line.ifEqual[1]);
  return insn(JMP | JA, 0, 0, offset, 0);
}
type Line = Insn | Jump | string;

/** Resolves labels (strings) and jumps: a jump's offset counts slots after itself. */
export function assemble(lines: Line[]): Insn[] {
  const at = new Map<string, number>();
  let slot = 0;
  for (const line of lines) {
    if (typeof line === "string") at.set(line, slot);
    else slot++;
  }
  const out: Insn[] = [];
  for (const line of lines) {
    if (typeof line === "string") continue;
    if ("to" in line) {
      const target = at.get(line.to);
      if (target === undefined) throw new Error(`no label ${line.to}`);
      out.push(jump(line, target - (out.length + 1)));
    } else out.push(line);
  }
  return out;
}

/**
 * `r8 = ` the client's address, mixed (see the comment at the top); r6 is
 * ctx. Falls back to ctx->hash when there is no IP header to read.
 */
function sourceAddressHash(): Line[] {
  const loadSource = (offset: number, bytes: number) => [
    mov(R1, R6),
    movImm(R2, offset),
    mov(R3, FP),
    addImm(R3, -24),
    movImm(R4, bytes),
    movImm(R5, BPF_HDR_START_NET),
    call(HELPER_SKB_LOAD_BYTES_RELATIVE),
    { ifNonZero: R0, to: "ctx hash" } as Jump,
  ];
  return [
    load32(R1, R6, CTX_ETH_PROTOCOL),
    { ifEqual: [R1, ETH_P_IP_BE], to: "ipv4" },
    { ifEqual: [R1, ETH_P_IPV6_BE], to: "ipv6" },
    { always: true, to: "ctx hash" },
    "ipv4",
    ...loadSource(IPV4_SOURCE, 4),
    load32(R8, FP, -24),
    { always: true, to: "mix" },
    "ipv6",
    ...loadSource(IPV6_SOURCE, 16),
    load32(R8, FP, -24),
    load32(R1, FP, -20),
    xor32(R8, R1),
    load32(R1, FP, -16),
    xor32(R8, R1),
    load32(R1, FP, -12),
    xor32(R8, R1),
    "mix",
    mulImm32(R8, GOLDEN),
    mov(R1, R8),
    rshImm32(R1, 16),
    xor32(R8, R1),
    { always: true, to: "hashed" },
    "ctx hash",
    load32(R8, R6, CTX_HASH),
    "hashed",
  ];
}

/**
 * `r8 = ` the next turn (and the turn moves on); ctx->hash when the slots
 * map has no turn slot. r6 is ctx.
 */
function nextTurn(slotsFd: number): Line[] {
  return [
    movImm(R9, ROUND_ROBIN_SLOT),
    ...lookupSlot(slotsFd),
    { ifZero: R0, to: "no turn" },
    load32(R8, R0, 0),
    mov(R1, R8),
    addImm32(R1, 1),
    store32(R0, 0, R1),
    { always: true, to: "turned" },
    "no turn",
    load32(R8, R6, CTX_HASH),
    "turned",
  ];
}

/**
 * The program's instructions, for the two maps' file descriptors; `sticky`:
 * spread by the client's address (else in turn).
 */
export function steeringProgram(listenersFd: number, slotsFd: number, sticky = false): Insn[] {
  const pass = "pass";
  /** Selects the listener whose key is at slots[i + 1] (i in r8); on to `pass` once selected. */
  const tryPick = [
    movImm(R9, 1),
    addReg32(R9, R8),
    ...lookupSlot(slotsFd),
    { ifZero: R0, to: pass }, // i + 1 beyond the map (cannot happen; the verifier asks)
    mov(R1, R6),
    ...loadMap(R2, listenersFd),
    mov(R3, R0), // the key, read by the helper from the slot itself
    movImm(R4, 0),
    call(HELPER_SK_SELECT_REUSEPORT),
    { ifZero: R0, to: pass }, // selected
  ];
  return assemble([
    mov(R6, R1), // keep ctx: helper calls clobber r1..r5; r6..r9 survive
    movImm(R9, 0),
    ...lookupSlot(slotsFd), // slots[0]: n
    { ifZero: R0, to: pass },
    load32(R7, R0, 0),
    { ifZero: R7, to: pass }, // nothing steered
    ...(sticky ? sourceAddressHash() : nextTurn(slotsFd)),
    mod32(R8, R7), // i = turn % n (n > 0 here)
    ...tryPick,
    addImm32(R8, 1), // a hole (the worker died; its socket left the map): the next one
    mod32(R8, R7),
    ...tryPick,
    pass,
    movImm(R0, SK_PASS),
    exit(),
  ]);
}

/** The instructions as `struct bpf_insn` bytes (little-endian, as on x86_64 and aarch64). */
export function encode(insns: Insn[]): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(new ArrayBuffer(insns.length * 8));
  const view = new DataView(bytes.buffer);
  insns.forEach((ins, i) => {
    view.setUint8(i * 8, ins.code);
    view.setUint8(i * 8 + 1, (ins.src << 4) | ins.dst);
    view.setInt16(i * 8 + 2, ins.off, true);
    view.setInt32(i * 8 + 4, ins.imm, true);
  });
  return bytes;
}
