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
 * u32 i = ctx->hash % *n;                      // spread by the 4-tuple hash
 * for (int try = 0; try < 2; try++) {          // unrolled: a hole (a worker just died)
 *   u32 *key = lookup(&slots, i + 1);          // sends the connection to the next one
 *   if (!key) return SK_PASS;
 *   if (bpf_sk_select_reuseport(ctx, &listeners, key, 0) == 0) return SK_PASS;
 *   i = (i + 1) % *n;
 * }
 * return SK_PASS;
 * ```
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
const ADD = 0x00, MOD = 0x90, MOV = 0xb0;
const JEQ = 0x10, CALL = 0x80, EXIT = 0x90;

/** `src` of a 64-bit immediate load whose `imm` is a map's fd. */
const PSEUDO_MAP_FD = 1;
/** Helper ids (enum bpf_func_id). */
export const HELPER_MAP_LOOKUP_ELEM = 1;
export const HELPER_SK_SELECT_REUSEPORT = 82;
/** Offset of `hash` in `struct sk_reuseport_md`. */
export const CTX_HASH = 32;
/** Return value: use the selected listener, or, if none was, the kernel's own pick. */
export const SK_PASS = 1;

const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R6 = 6, R7 = 7, R8 = 8, R9 = 9, FP = 10;

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

/** A jump to a label, resolved by {@link assemble}. */
interface Jump {
  ifZero: number;
  to: string;
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
      out.push(jumpIfZero(line.ifZero, target - (out.length + 1)));
    } else out.push(line);
  }
  return out;
}

/** The program's instructions, for the two maps' file descriptors. */
export function steeringProgram(listenersFd: number, slotsFd: number): Insn[] {
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
    load32(R8, R6, CTX_HASH),
    mod32(R8, R7), // i = hash % n (n > 0 here)
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
