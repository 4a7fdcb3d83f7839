/**
 * Test helpers: run the real CLI as a process, talk to it over real sockets,
 * wait by polling with deadlines, and prove that nothing was left running.
 *
 * Every supervisor a test starts carries a unique HOTRELOAD_TEST_TAG in its
 * environment, which its workers and their children inherit; scanning
 * /proc/<pid>/environ for the tag finds every descendant, even one that was
 * re-parented after its supervisor died.
 */
import assert from "node:assert/strict";
import { procStat } from "../src/child/os.ts";

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const CLI = `${ROOT}/cli.ts`;
export const MOD_URL = new URL("../mod.ts", import.meta.url).href;

/** True when the pid is alive and is not a zombie waiting to be reaped. */
export function pidRunning(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state !== undefined && state !== "Z";
}

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  what: string | (() => string),
  timeoutMs = 15_000,
  intervalMs = 25,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}` +
      (lastError ? ` (last error: ${lastError})` : ""),
  );
}

/** A port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A plain HTTP/1.1 GET on a fresh connection (no pooling, so the kernel picks a worker). */
export async function httpGet(
  port: number,
  path = "/",
): Promise<{ status: number; body: string; headers: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
      ),
    );
    const chunks: Uint8Array[] = [];
    const buffer = new Uint8Array(16 * 1024);
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
    const text = new TextDecoder().decode(concat(chunks));
    const [head, ...rest] = text.split("\r\n\r\n");
    const status = Number(head.split(" ")[1]);
    let body = rest.join("\r\n\r\n");
    if (/transfer-encoding: chunked/i.test(head)) body = dechunk(body);
    return { status, body, headers: head };
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }
}

/** The chunks, one after another, in one array. */
export function concat(chunks: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

function dechunk(body: string): string {
  let out = "";
  let rest = body;
  while (rest.length > 0) {
    const lineEnd = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!size) break;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
  return out;
}

/** SIGKILLs every process whose environment carries `tag` (the cleanup of last resort). */
export function killTagged(tag: string): void {
  for (const pid of taggedPids(tag)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
}

/** Pids of every process whose environment carries `tag`. */
export function taggedPids(tag: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const environ = Deno.readTextFileSync(`/proc/${entry.name}/environ`);
      const pid = Number(entry.name);
      if (environ.includes(`HOTRELOAD_TEST_TAG=${tag}\0`) && pidRunning(pid)) pids.push(pid);
    } catch { /* gone, or not ours to read */ }
  }
  return pids;
}

/** A project directory with the given files, removed by `cleanup()`. */
export async function makeProject(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-test-" });
  for (const [name, content] of Object.entries(files)) {
    const path = `${dir}/${name}`;
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, content);
  }
  return dir;
}

/** Output of a process, as lines, growing while it runs. */
export class Output {
  readonly lines: string[] = [];
  #partial = "";

  feed(text: string): void {
    const parts = (this.#partial + text).split("\n");
    this.#partial = parts.pop()!;
    this.lines.push(...parts);
  }

  end(): void {
    if (this.#partial !== "") this.lines.push(this.#partial);
    this.#partial = "";
  }

  text(): string {
    return this.lines.join("\n");
  }

  has(pattern: RegExp | string): boolean {
    return this.lines.some((line) =>
      typeof pattern === "string" ? line.includes(pattern) : pattern.test(line)
    );
  }

  matches(pattern: RegExp): RegExpMatchArray[] {
    return this.lines.map((line) => line.match(pattern)).filter((m): m is RegExpMatchArray =>
      m !== null
    );
  }
}

/** A running `hotreload` command. */
export class Hotreload {
  readonly tag = crypto.randomUUID();
  readonly output = new Output();
  readonly process: Deno.ChildProcess;
  readonly status: Promise<Deno.CommandStatus>;

  /**
   * `prefix`, if given, is a command that ends by exec'ing its arguments
   * (so the pid stays hotreload's), e.g. to run it in a user namespace;
   * `command` is how hotreload is run (an installed `hotreload`, say).
   */
  constructor(
    args: string[],
    readonly cwd: string,
    env: Record<string, string> = {},
    prefix: string[] = [],
    command: string[] = [Deno.execPath(), "run", "-A", CLI],
  ) {
    const argv = [...prefix, ...command, ...args];
    this.process = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd,
      env: { NO_COLOR: "1", ...env, HOTRELOAD_TEST_TAG: this.tag },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) this.output.feed(text);
    };
    const pumps = Promise.all([pump(this.process.stdout), pump(this.process.stderr)]);
    this.status = Promise.all([this.process.status, pumps]).then(([status]) => {
      this.output.end();
      return status;
    });
  }

  get pid(): number {
    return this.process.pid;
  }

  waitForOutput(pattern: RegExp | string, timeoutMs = 20_000): Promise<boolean> {
    return waitFor(
      () => this.output.has(pattern),
      () => `output ${pattern}\n--- output ---\n${this.output.text()}`,
      timeoutMs,
    );
  }

  /** Waits until `count` distinct workers have logged "ready". */
  waitForReady(count: number, timeoutMs = 20_000): Promise<boolean> {
    return waitFor(
      () => this.output.matches(/worker \d+ ready \(pid/).length >= count,
      () => `${count} workers ready\n--- output ---\n${this.output.text()}`,
      timeoutMs,
    );
  }

  signal(signal: Deno.Signal): void {
    Deno.kill(this.pid, signal);
  }

  /**
   * Ends the run: SIGTERM if still running, then SIGKILL everything tagged that
   * is left, and fails if anything had to be killed that way.
   */
  async cleanup(): Promise<void> {
    try {
      this.signal("SIGTERM");
    } catch { /* already exited */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.status.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), 15_000)),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        this.signal("SIGKILL");
      } catch { /* gone */ }
      await this.status;
    }
    let leftovers: number[] = [];
    try {
      await waitFor(
        () => {
          leftovers = taggedPids(this.tag);
          return leftovers.length === 0;
        },
        "tagged processes to exit",
        10_000,
      );
    } finally {
      killTagged(this.tag);
    }
    assert.ok(exited, `hotreload did not exit within 15 s of SIGTERM\n${this.output.text()}`);
  }
}

/**
 * Runs a short `hotreload` command to completion; `prefix`, if given, is a
 * command that ends by exec'ing its arguments (e.g. setpriv).
 */
export async function runCli(
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
  prefix: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = [...prefix, Deno.execPath(), "run", "-A", CLI, ...args];
  const result = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    // A hung command must fail its test, not hang the suite.
    signal: AbortSignal.timeout(60_000),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}

/**
 * Starts hotreload on a fresh project with a free port, runs `body`, and
 * always cleans up both (stopping everything it started, or failing).
 */
export async function withHotreload(
  files: Record<string, string>,
  args: (port: number) => string[],
  body: (run: Hotreload, project: { dir: string; port: number }) => Promise<void>,
  { prefix = [] as string[], env = {} as Record<string, string> } = {},
): Promise<void> {
  const dir = await makeProject(files);
  const port = freePort();
  const run = new Hotreload(args(port), dir, env, prefix);
  try {
    await body(run, { dir, port });
  } finally {
    await run.cleanup();
    await Deno.remove(dir, { recursive: true });
  }
}

/** The pids of the spares waiting in the instance run from `dir`, from `status --json`. */
export async function sparePids(dir: string): Promise<Set<number>> {
  const status = JSON.parse((await runCli(["status", "--json"], dir)).stdout);
  return new Set(
    (status.children as Array<{ state: string; pid: number }>)
      .filter((child) => child.state === "spare")
      .map((child) => child.pid),
  );
}

/** `run main.ts -N --port <port> --no-watch` and any further arguments. */
export function serveArgs(port: number, ...extra: string[]): string[] {
  return watchingArgs(port, "--no-watch", ...extra);
}

/** `hotreload run main.ts -N --port <port>`, watching (the default), and `extra`. */
export function watchingArgs(port: number, ...extra: string[]): string[] {
  return ["run", "main.ts", "-N", "--port", String(port), ...extra];
}
