/**
 * The operating system, faked for unit tests: processes whose pipes are
 * in-memory streams and whose exit the test decides, signals that are
 * recorded (and acted on as a well-behaved app would), and no /proc. The
 * real ManagedChild runs on it (watchexec fakes only its child the same
 * way), so what the core does to a child is the code that runs for real.
 */
import type { ChildMessage } from "../runtime/protocol.ts";
import { encodeFrame } from "../runtime/protocol.ts";
import type { Os, OsProcess } from "./os.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One faked process: the test reads what it was sent and decides what it prints and when it ends. */
export class FakeProcess implements OsProcess {
  readonly stdin: WritableStream<Uint8Array>;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  readonly status: Promise<Deno.CommandStatus>;
  /** Signals it was sent, in order (`-SIGKILL`: to its group). */
  readonly signals: string[] = [];
  /** Everything written on its stdin. */
  #input = new Uint8Array(0);
  #out!: ReadableStreamDefaultController<Uint8Array>;
  #err!: ReadableStreamDefaultController<Uint8Array>;
  #exit!: (status: Deno.CommandStatus) => void;
  exited = false;

  constructor(readonly pid: number, readonly command: string, readonly args: string[]) {
    this.stdout = new ReadableStream({ start: (c) => void (this.#out = c) });
    this.stderr = new ReadableStream({ start: (c) => void (this.#err = c) });
    this.status = new Promise((resolve) => this.#exit = resolve);
    this.stdin = new WritableStream({
      write: (chunk) => {
        const all = new Uint8Array(this.#input.length + chunk.length);
        all.set(this.#input);
        all.set(chunk, this.#input.length);
        this.#input = all;
      },
    });
  }

  /** The handshake it read: its nonce and settings (undefined before it was sent one). */
  handshake(): { nonce: string; supervisor: number; settings: unknown } | undefined {
    const text = decoder.decode(this.#input);
    const newline = text.indexOf("\n");
    if (newline === -1) return undefined;
    const length = Number(text.slice(0, newline));
    const json = this.#input.subarray(encoder.encode(text.slice(0, newline + 1)).length);
    if (json.length < length) return undefined;
    return JSON.parse(decoder.decode(json.subarray(0, length)));
  }

  /** The JSON lines it was sent after its handshake. */
  messages(): unknown[] {
    const text = decoder.decode(this.#input);
    const newline = text.indexOf("\n");
    const length = Number(text.slice(0, newline));
    const rest = decoder.decode(this.#input.subarray(newline + 1 + length));
    return rest.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
  }

  /** Writes a frame, as the preload would, with the nonce of its handshake. */
  frame(message: ChildMessage): void {
    const nonce = this.handshake()?.nonce;
    if (nonce === undefined) throw new Error(`pid ${this.pid} has no handshake yet`);
    this.print(encodeFrame(nonce, message).trimEnd(), "stderr");
  }

  /** Prints a line. */
  print(line: string, stream: "stdout" | "stderr" = "stdout"): void {
    if (this.exited) return;
    (stream === "stdout" ? this.#out : this.#err).enqueue(encoder.encode(`${line}\n`));
  }

  /** The process ends with `code` (or by `signal`). */
  exit(code: number | null, signal: Deno.Signal | null = null): void {
    if (this.exited) return;
    this.exited = true;
    this.#out.close();
    this.#err.close();
    this.#exit({ success: code === 0, code: code ?? 128 + 9, signal });
  }
}

/** A fake OS: every process it spawns, and what a signal does to them. */
export class FakeOs implements Os {
  readonly processes: FakeProcess[] = [];
  #nextPid = 1000;
  /**
   * What a signal does to a live process. Default: SIGKILL ends it at once,
   * SIGTERM and SIGINT end it cleanly at once (a well-behaved app), others
   * are noted only.
   */
  onSignal = (process: FakeProcess, signal: Deno.Signal) => {
    if (signal === "SIGKILL") queueMicrotask(() => process.exit(null, "SIGKILL"));
    if (signal === "SIGTERM" || signal === "SIGINT") queueMicrotask(() => process.exit(0));
  };

  constructor(firstPid = 1000) {
    this.#nextPid = firstPid;
  }

  spawn(command: string, options: { args: string[] }): OsProcess {
    const process = new FakeProcess(this.#nextPid++, command, options.args);
    this.processes.push(process);
    return process;
  }

  signal(pid: number, signal: Deno.Signal, group: boolean): boolean {
    const process = this.processes.find((p) => p.pid === pid);
    if (!process || process.exited) return false;
    process.signals.push(group ? `-${signal}` : signal);
    this.onSignal(process, signal);
    return true;
  }

  /** No /proc here: every process is gone as far as it can tell. */
  stat(): string[] | undefined {
    return undefined;
  }
}
