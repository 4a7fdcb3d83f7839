/**
 * hotreload's API for apps and custom processes. Every function is safe to call
 * when the app runs without hotreload: it then does nothing (or returns
 * `undefined`), so an app can import this module unconditionally.
 *
 * @example
 * ```ts
 * import { onShutdown, workerInfo } from "./mod.ts";
 *
 * const db = { close: async () => {} };
 * onShutdown(() => db.close());
 * Deno.serve(() => new Response(`worker ${workerInfo()?.id ?? "-"}`));
 * ```
 * @module
 */
import { type Bridge, BRIDGE_KEY, PROCESS_BRAND } from "./src/runtime/protocol.ts";

function bridge(): Bridge | undefined {
  return (globalThis as Record<symbol, unknown>)[BRIDGE_KEY] as Bridge | undefined;
}

/** Who this worker is within its pool. */
export interface WorkerInfo {
  /** 0-based slot id, stable across restarts and reloads. */
  id: number;
  /** Generation: 1 at start, one more for each reload. */
  generation: number;
  /** Number of workers in the pool. */
  workers: number;
  /** The port given to hotreload with `--port`, if any. */
  port?: number;
}

/**
 * Returns this worker's identity, or `undefined` when not running under hotreload.
 *
 * @example
 * ```ts
 * import { workerInfo } from "./mod.ts";
 * console.log(`worker ${workerInfo()?.id} of ${workerInfo()?.workers}`);
 * ```
 */
export function workerInfo(): WorkerInfo | undefined {
  const info = bridge()?.info;
  return info ? { ...info } : undefined;
}

/**
 * Registers a hook that runs when the worker drains (stop, reload, scale down),
 * after its servers have finished their in-flight requests and before it exits.
 * Hooks run one after another, in registration order; an error in one is logged
 * and the next still runs.
 *
 * @example
 * ```ts
 * import { onShutdown } from "./mod.ts";
 * const timer = setInterval(() => {}, 1000);
 * onShutdown(() => clearInterval(timer));
 * ```
 */
export function onShutdown(hook: () => unknown): void {
  bridge()?.onShutdown(hook);
}

/**
 * Declares that this worker decides itself when it is ready: binding a listener
 * no longer counts; call {@link ready} once warm-up is done. Call it at the top
 * level of the entry, before the server starts.
 *
 * @example
 * ```ts
 * import { deferReady, ready } from "./mod.ts";
 * deferReady();
 * Deno.serve(() => new Response("ok"));
 * await Promise.resolve(); // warm caches, open pools...
 * ready();
 * ```
 */
export function deferReady(): void {
  bridge()?.deferReady();
}

/**
 * Tells the supervisor this worker is ready to take traffic. A rolling reload
 * waits for it before draining the worker's predecessor.
 *
 * @example
 * ```ts
 * import { ready } from "./mod.ts";
 * ready();
 * ```
 */
export function ready(): void {
  bridge()?.ready();
}

/**
 * True once this worker has been asked to drain; long-running handlers can use
 * it to stop early.
 *
 * @example
 * ```ts
 * import { isDraining } from "./mod.ts";
 * if (isDraining()) console.log("finishing up");
 * ```
 */
export function isDraining(): boolean {
  return bridge()?.isDraining() ?? false;
}

/** Never aborted: the signal outside hotreload. */
const NEVER = new AbortController().signal;

/**
 * An `AbortSignal` aborted the moment this worker (or custom process) starts
 * to drain, before its servers close: a stream (SSE, long poll) can send a
 * last event, such as "reconnect", and end cleanly instead of being cut at
 * `--grace`. Outside hotreload it is never aborted.
 *
 * @example
 * ```ts
 * import { drainSignal } from "./mod.ts";
 * Deno.serve(() => {
 *   const body = new ReadableStream<string>({
 *     start(controller) {
 *       const tick = setInterval(() => controller.enqueue("data: tick\n\n"), 1000);
 *       drainSignal().addEventListener("abort", () => {
 *         clearInterval(tick);
 *         controller.enqueue("event: reconnect\ndata: bye\n\n");
 *         controller.close();
 *       });
 *     },
 *   });
 *   return new Response(body.pipeThrough(new TextEncoderStream()), {
 *     headers: { "content-type": "text/event-stream" },
 *   });
 * });
 * ```
 */
export function drainSignal(): AbortSignal {
  return bridge()?.drainSignal() ?? NEVER;
}

/** Who this custom process is. */
export interface ProcessInfo {
  /** The process's name from the config or `--process name=entry`. */
  name: string;
  /** 0-based instance index, below the configured `count`. */
  index: number;
  /** Generation: 1 at start, one more for each reload. */
  generation: number;
  /** The `args` object from the config (`{}` when none). */
  args: Record<string, unknown>;
}

/**
 * Returns this custom process's identity, or `undefined` outside one.
 *
 * @example
 * ```ts
 * import { processInfo } from "./mod.ts";
 * console.log(`${processInfo()?.name}#${processInfo()?.index}`);
 * ```
 */
export function processInfo(): ProcessInfo | undefined {
  const info = bridge()?.process;
  return info ? { ...info, args: { ...info.args } } : undefined;
}

/** What `run` receives. */
export interface ProcessContext<Args = Record<string, unknown>> {
  /** The process's name. */
  name: string;
  /** 0-based instance index. */
  index: number;
  /** The `args` object from the config. */
  args: Args;
  /** Aborted when the process is asked to stop (stop, reload, warm restart). */
  signal: AbortSignal;
  /** Prints a line; the supervisor prefixes it with the process's name, index and pid. */
  log: (...data: unknown[]) => void;
}

/** A custom process: what it does and how it reacts. */
export interface ProcessDefinition<Args = Record<string, unknown>> {
  /**
   * The process's work. When it returns, the process exits 0 (and the restart
   * policy decides what follows); it should return soon after `ctx.signal` aborts.
   */
  run(ctx: ProcessContext<Args>): unknown | Promise<unknown>;
  /** A message from `hotreload send <name> '<json>'`. */
  onMessage?(message: unknown): unknown | Promise<unknown>;
  /** Runs before a graceful exit, after `ctx.signal` has been aborted. */
  onShutdown?(): unknown | Promise<unknown>;
  /** An error escaped `run`; the process then exits 1 and is restarted per its policy. */
  onException?(error: unknown): unknown | Promise<unknown>;
}

/**
 * Declares a custom process: make it the entry's default export. hotreload runs
 * it beside the workers, restarts it by its policy, reloads it with the code,
 * and delivers messages to it.
 *
 * @example
 * ```ts
 * import { defineProcess } from "./mod.ts";
 *
 * export default defineProcess({
 *   async run(ctx) {
 *     while (!ctx.signal.aborted) {
 *       ctx.log(`tick from ${ctx.name}#${ctx.index}`);
 *       await new Promise((resolve) => setTimeout(resolve, 1000));
 *     }
 *   },
 *   onMessage(message) {
 *     console.log("got", message);
 *   },
 * });
 * ```
 */
export function defineProcess<Args = Record<string, unknown>>(
  definition: ProcessDefinition<Args>,
): ProcessDefinition<Args> {
  return Object.assign(definition, { [PROCESS_BRAND]: true });
}
