/**
 * The BPF objects of steering: the listeners map (REUSEPORT_SOCKARRAY), the
 * slots map (an ARRAY of u32: the count, then the keys in use) and the loaded
 * program (program.ts), with the
 * few `bpf(2)` commands that edit them. Creating them needs CAP_BPF and
 * CAP_NET_ADMIN (or root); they live until closed here and no program uses them.
 *
 * @module
 */
import { encode, ROUND_ROBIN_SLOT, steeringProgram } from "./program.ts";
import { addressOf, type Linux, OsError, zeroed } from "./linux.ts";

const BPF_MAP_CREATE = 0;
const BPF_MAP_UPDATE_ELEM = 2;
const BPF_MAP_DELETE_ELEM = 3;
const BPF_PROG_LOAD = 5;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20;
const BPF_PROG_TYPE_SK_REUSEPORT = 21;
const BPF_SK_REUSEPORT_SELECT_OR_MIGRATE = 40;
/** Size of the `union bpf_attr` we fill (the kernel zero-fills the rest). */
const ATTR_SIZE = 128;

/** The most workers steering can hold; more ready workers than this are not steered. */
export const MAX_STEERED = 1024;

export class SteeringObjects {
  readonly #linux: Linux;
  readonly listenersFd: number;
  readonly slotsFd: number;
  readonly progFd: number;

  private constructor(linux: Linux, listenersFd: number, slotsFd: number, progFd: number) {
    this.#linux = linux;
    this.listenersFd = listenersFd;
    this.slotsFd = slotsFd;
    this.progFd = progFd;
  }

  /** Creates both maps and loads the program; throws an OsError naming the failed step. */
  static create(linux: Linux, sticky = false): SteeringObjects {
    const created: number[] = [];
    try {
      // Values are socket fds as u64 going in (the kernel keeps the socket itself).
      const listeners = createMap(
        linux,
        BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
        8,
        MAX_STEERED,
        "listeners",
      );
      created.push(listeners);
      // slots[0] = n, slots[1..MAX_STEERED] = keys, then the round-robin turn (program.ts).
      const slots = createMap(linux, BPF_MAP_TYPE_ARRAY, 4, ROUND_ROBIN_SLOT + 1, "slots");
      created.push(slots);
      const prog = loadProgram(linux, listeners, slots, sticky);
      return new SteeringObjects(linux, listeners, slots, prog);
    } catch (error) {
      for (const fd of created) linux.close(fd);
      throw error;
    }
  }

  /**
   * Puts the listening socket `socketFd` (a duplicate we own) at `key`. A
   * socket can sit at one key only: it stays there until cleared.
   */
  setListener(key: number, socketFd: number): void {
    this.#update(this.listenersFd, key, socketFd, 8, "listeners");
  }

  /** Empties `key` of the listeners map (no error when it was empty already). */
  clearListener(key: number): void {
    const attr = zeroed(ATTR_SIZE);
    const keyBytes = u32(key);
    const view = new DataView(attr.buffer);
    view.setUint32(0, this.listenersFd, true);
    view.setBigUint64(8, addressOf(keyBytes), true);
    try {
      this.#linux.bpf("MAP_DELETE_ELEM", BPF_MAP_DELETE_ELEM, attr);
    } catch (error) {
      if (!(error instanceof OsError && error.errno === 2)) throw error;
    }
  }

  /** Writes slots[index]: the count at 0, the listeners' keys at 1..count. */
  setSlot(index: number, value: number): void {
    this.#update(this.slotsFd, index, value, 4, "slots");
  }

  #update(mapFd: number, key: number, value: number, valueSize: 4 | 8, name: string): void {
    const attr = zeroed(ATTR_SIZE);
    const keyBytes = u32(key);
    const valueBytes = zeroed(8);
    new DataView(valueBytes.buffer).setBigUint64(0, BigInt(value), true);
    const view = new DataView(attr.buffer);
    view.setUint32(0, mapFd, true);
    view.setBigUint64(8, addressOf(keyBytes), true);
    view.setBigUint64(
      16,
      addressOf(valueSize === 8 ? valueBytes : valueBytes.subarray(0, 4)),
      true,
    );
    this.#linux.bpf(`MAP_UPDATE_ELEM ${name}`, BPF_MAP_UPDATE_ELEM, attr);
  }

  close(): void {
    for (const fd of [this.progFd, this.slotsFd, this.listenersFd]) this.#linux.close(fd);
  }
}

function u32(value: number): Uint8Array<ArrayBuffer> {
  const bytes = zeroed(4);
  new DataView(bytes.buffer).setUint32(0, value, true);
  return bytes;
}

function createMap(
  linux: Linux,
  type: number,
  valueSize: number,
  entries: number,
  name: string,
): number {
  const attr = zeroed(ATTR_SIZE);
  const view = new DataView(attr.buffer);
  view.setUint32(0, type, true);
  view.setUint32(4, 4, true); // key_size: u32
  view.setUint32(8, valueSize, true);
  view.setUint32(12, entries, true);
  // map_name (16 bytes at offset 28 of the MAP_CREATE attr), for bpftool's eyes.
  attr.set(new TextEncoder().encode(`hotreload_${name}`.slice(0, 15)), 28); // e.g. hotreload_liste
  return linux.bpf(`MAP_CREATE ${name}`, BPF_MAP_CREATE, attr);
}

function loadProgram(
  linux: Linux,
  listenersFd: number,
  slotsFd: number,
  sticky: boolean,
): number {
  const insns = encode(steeringProgram(listenersFd, slotsFd, sticky));
  const license = new TextEncoder().encode("GPL\0");
  const licenseBytes = zeroed(license.length);
  licenseBytes.set(license);
  const log = zeroed(16384);
  const attr = zeroed(ATTR_SIZE);
  const view = new DataView(attr.buffer);
  view.setUint32(0, BPF_PROG_TYPE_SK_REUSEPORT, true);
  view.setUint32(4, insns.length / 8, true);
  view.setBigUint64(8, addressOf(insns), true);
  view.setBigUint64(16, addressOf(licenseBytes), true);
  view.setUint32(24, 1, true); // log_level: the verifier says why, should it refuse
  view.setUint32(28, log.length, true);
  view.setBigUint64(32, addressOf(log), true);
  attr.set(new TextEncoder().encode("hotreload_steer"), 48); // prog_name
  view.setUint32(68, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, true); // expected_attach_type
  try {
    return linux.bpf("PROG_LOAD", BPF_PROG_LOAD, attr);
  } catch (error) {
    const said = new TextDecoder().decode(log).replace(/\0.*$/s, "").trim().split("\n").at(-1);
    if (error instanceof OsError && said) {
      throw new OsError(`bpf(PROG_LOAD) [verifier: ${said}]`, error.errno);
    }
    throw error;
  }
}
