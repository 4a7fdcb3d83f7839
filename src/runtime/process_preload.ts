/**
 * Runs inside every custom process, before its entry (`deno run --preload`).
 *
 * - An entry whose default export comes from `defineProcess` is run: `run(ctx)`,
 *   `onMessage` for `hotreload send`, `onShutdown` before a graceful exit,
 *   `onException` when `run` throws (the process then exits 1).
 * - A plain script is simply run.
 * - SIGINT is the supervisor asking for a graceful stop. SIGTERM from anyone
 *   else is a warm restart: the process shuts down gracefully and tells the
 *   supervisor to start it again at once, with the current code.
 * - If the supervisor dies, the process shuts down on its own.
 *
 * Dependency-free, like the worker preload, and for the same reasons.
 */
import {
  childSettings,
  heartbeat,
  readSupervisorMessages,
  runHooks,
  tell,
  whenOrphaned,
} from "./child_runtime.ts";
import { type Bridge, BRIDGE_KEY, PROCESS_BRAND, type ProcessSettings } from "./protocol.ts";

interface Definition {
  run(ctx: unknown): unknown;
  onMessage?(message: unknown): unknown;
  onShutdown?(): unknown;
  onException?(error: unknown): unknown;
}

const settings = childSettings<ProcessSettings>();
const shutdownSignal = new AbortController();
const shutdownHooks: Array<() => unknown> = [];
let definition: Definition | undefined;
let running: Promise<unknown> | undefined;
let stopping = false;

const context = {
  name: settings.name,
  index: settings.index,
  args: settings.args,
  signal: shutdownSignal.signal,
  log: (...data: unknown[]) => console.log(...data),
};

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  orphans.draining();
  shutdownSignal.abort();
  try {
    await definition?.onShutdown?.();
  } catch (error) {
    console.error("onShutdown failed:", error);
  }
  await runHooks(shutdownHooks);
  await running?.catch(() => {});
  orphans.exit();
}

Deno.addSignalListener("SIGINT", () => void stop());
Deno.addSignalListener("SIGTERM", () => {
  if (!stopping) tell({ t: "restart-requested" });
  void stop();
});
const orphans = whenOrphaned(settings.orphanGraceMs, () => void stop());
if (settings.heartbeatMs) heartbeat(settings.heartbeatMs);

async function runDefinition(def: Definition): Promise<void> {
  try {
    running = Promise.resolve(def.run(context));
    await running;
  } catch (error) {
    if (stopping) return; // run() gave up because we asked it to
    console.error(`process ${settings.name}#${settings.index} failed:`, error);
    try {
      await def.onException?.(error);
    } catch (hookError) {
      console.error("onException failed:", hookError);
    }
    Deno.exit(1);
  }
  // run() finished its work on its own: the restart policy decides what comes next.
  if (!stopping) Deno.exit(0);
}

function deliver(message: unknown): void {
  if (!definition?.onMessage) {
    console.error(
      `process ${settings.name}#${settings.index} got a message but defines no onMessage; dropped`,
    );
    return;
  }
  Promise.resolve()
    .then(() => definition!.onMessage!(message))
    .catch((error) => console.error("onMessage failed:", error));
}

globalThis.addEventListener("load", async () => {
  let entry;
  try {
    entry = await import(Deno.mainModule);
  } catch {
    return; // the entry's own error, which Deno reports (once)
  }
  const exported = entry.default as (Definition & { [PROCESS_BRAND]?: true }) | undefined;
  tell({ t: "ready", via: "app" });
  if (exported?.[PROCESS_BRAND] || typeof exported?.run === "function") {
    definition = exported;
    // Messages come on stdin. Only a defined process reads it: a pending read
    // keeps a process alive, and a plain script must exit when it is done.
    void readSupervisorMessages((message) => {
      if (message.t === "message") deliver(message.data);
    }, orphans.orphan);
    await runDefinition(exported);
  }
});

const bridge: Bridge = {
  role: "process",
  process: {
    name: settings.name,
    index: settings.index,
    generation: settings.generation,
    args: settings.args,
  },
  ready: () => {},
  deferReady: () => {},
  onShutdown(hook) {
    shutdownHooks.push(hook);
  },
  isDraining: () => stopping,
  drainSignal: () => shutdownSignal.signal,
};
(globalThis as Record<symbol, unknown>)[BRIDGE_KEY] = bridge;
