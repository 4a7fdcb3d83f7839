import assert from "node:assert/strict";
import {
  assemble,
  CTX_HASH,
  encode,
  HELPER_MAP_LOOKUP_ELEM,
  HELPER_SK_SELECT_REUSEPORT,
  type Insn,
  SK_PASS,
  steeringProgram,
} from "./program.ts";
import { Linux } from "./linux.ts";
import { SteeringObjects } from "./bpf.ts";

const LISTENERS = 7, SLOTS = 9;
const program = steeringProgram(LISTENERS, SLOTS);
const hex = (insn: Insn) =>
  Array.from(encode([insn]), (byte) => byte.toString(16).padStart(2, "0")).join("");

Deno.test("the steering program is the instructions its comment shows, byte for byte where it matters", () => {
  assert.equal(program.length, 62);
  assert.equal(hex(program[0]), "bf16000000000000", "r6 = r1 (keep ctx)");
  assert.equal(hex(program[2]), "639afcff00000000", "*(u32 *)(r10 - 4) = r9 (the slot index)");
  assert.equal(hex(program[5]), "1811000009000000", "r1 = map fd 9 (slots), a pseudo map load");
  assert.equal(hex(program[7]), "8500000001000000", "call bpf_map_lookup_elem");
  assert.equal(hex(program[9]), "6107000000000000", "r7 = *(u32 *)(r0 + 0): n");
  assert.equal(hex(program[11]), "b709000001040000", "r9 = 1025: the turn's slot");
  assert.equal(hex(program[19]), "6108000000000000", "r8 = *(u32 *)(r0 + 0): the turn");
  assert.equal(hex(program[21]), "0401000001000000", "w1 += 1");
  assert.equal(hex(program[22]), "6310000000000000", "*(u32 *)(r0 + 0) = r1: the next turn");
  assert.equal(hex(program[24]), "6168200000000000", "r8 = ctx->hash (no turn slot)");
  assert.equal(hex(program[25]), "9c78000000000000", "w8 %= w7");
  assert.equal(hex(program[27]), "0c89000000000000", "w9 += w8: slot i + 1");
  assert.equal(hex(program[38]), "bf03000000000000", "r3 = r0: the key, read from the slot");
  assert.equal(hex(program[40]), "8500000052000000", "call bpf_sk_select_reuseport");
  assert.equal(hex(program[42]), "0408000001000000", "w8 += 1: the next slot");
  assert.deepEqual(program.slice(-2).map(hex), ["b700000001000000", "9500000000000000"]);
});

Deno.test("the program takes turns (the hash without a turn), calls only its two helpers, and always passes", () => {
  const calls = program.filter((insn) => insn.code === 0x85).map((insn) => insn.imm);
  const [lookup, select] = [HELPER_MAP_LOOKUP_ELEM, HELPER_SK_SELECT_REUSEPORT];
  assert.deepEqual(calls, [lookup, lookup, lookup, select, lookup, select]);
  const ctxLoads = program.filter((insn) => insn.code === 0x61 && insn.src === 6);
  assert.deepEqual(ctxLoads.map((insn) => insn.off), [CTX_HASH]);
  // Every 64-bit immediate is a map fd (pseudo src 1), each map's where its helper wants it.
  const maps = program.filter((insn) => insn.code === 0x18).map((insn) => [insn.dst, insn.imm]);
  assert.deepEqual(maps, [
    [1, SLOTS],
    [1, SLOTS],
    [1, SLOTS],
    [2, LISTENERS],
    [1, SLOTS],
    [2, LISTENERS],
  ]);
  // The only store into a map value: the turn, moved on by one.
  const stores = program.filter((insn) => insn.code === 0x63 && insn.dst === 0);
  assert.equal(stores.length, 1);
  assert.ok(program.filter((insn) => insn.code === 0x18).every((insn) => insn.src === 1));
  // One exit, at the end, after r0 = SK_PASS: no path drops a connection.
  const exits = program.flatMap((insn, i) => insn.code === 0x95 ? [i] : []);
  assert.deepEqual(exits, [program.length - 1]);
  assert.deepEqual(program.at(-2), { code: 0xb7, dst: 0, src: 0, off: 0, imm: SK_PASS });
});

Deno.test("every jump lands on the final SK_PASS, but the turn's: on ctx->hash", () => {
  const jumps = program.flatMap((insn, i) => insn.code === 0x15 ? [i + 1 + insn.off] : []);
  assert.equal(jumps.length, 7);
  const hashAt = program.findIndex((insn) => hex(insn) === "6168200000000000");
  assert.deepEqual(jumps.filter((target) => target !== program.length - 2), [hashAt]);
});

Deno.test("assemble resolves labels forward and refuses a missing one", () => {
  const nop = { code: 0xb7, dst: 0, src: 0, off: 0, imm: 0 };
  const out = assemble([{ ifZero: 0, to: "end" }, nop, nop, "end", nop]);
  assert.equal(out[0].off, 2);
  assert.throws(() => assemble([{ ifZero: 0, to: "nowhere" }]), /no label nowhere/);
});

const linux = Linux.open();
const root = Deno.uid() === 0;

Deno.test({
  name: "the kernel's verifier accepts the program (needs root: CAP_BPF and CAP_NET_ADMIN)",
  ignore: typeof linux === "string" || !root,
  fn() {
    const objects = SteeringObjects.create(linux as Linux);
    try {
      assert.ok(objects.progFd > 2);
      objects.setSlot(0, 0);
    } finally {
      objects.close();
      (linux as Linux).unload();
    }
  },
});
