/**
 * The child protocol, shared by the supervisor and the code that runs inside
 * children. This module must stay free of imports: it is loaded by worker
 * preloads that resolve modules with the user's own deno.json.
 *
 * Child → supervisor: one line on stderr that starts with {@link FRAME_MARKER}
 * followed by a JSON object. The marker begins with a NUL character, which
 * apps never print, so the relay can strip these lines from the app's log.
 *
 * Supervisor → child: JSON lines on the child's stdin. EOF means the
 * supervisor is gone.
 */

/** Prefix of every control line a child writes; the rest of the line is JSON. */
export const FRAME_MARKER = "\u0000hotreload:";

/** What a child reports to its supervisor. */
export type ChildMessage =
  | { t: "ready"; via: "listen" | "app"; port?: number; hostname?: string }
  | { t: "bind-error"; port?: number; hostname?: string; message: string }
  | { t: "restart-requested" }
  | { t: "requests"; served: number }
  | { t: "recycle"; reason: string };

/** What the supervisor tells a child. */
export type SupervisorMessage = { t: "message"; data: unknown };

/** Encodes one child message as a framed line (with its newline). */
export function encodeFrame(message: ChildMessage): string {
  return `${FRAME_MARKER}${JSON.stringify(message)}\n`;
}

/**
 * Splits a relayed line into the app's own text and the frame it carries, if
 * any. Text printed without a newline just before a frame ends up in `text`.
 */
export function decodeFrame(line: string): { text: string; message?: ChildMessage } {
  const at = line.indexOf(FRAME_MARKER);
  if (at === -1) return { text: line };
  try {
    const message = JSON.parse(line.slice(at + FRAME_MARKER.length)) as ChildMessage;
    return { text: line.slice(0, at), message };
  } catch {
    return { text: line };
  }
}

/** The settings a worker's preload reads from its own module URL's query. */
export interface WorkerSettings {
  /** 0-based worker id. */
  id: number;
  /** Generation this worker belongs to (1 for the first start, +1 per reload). */
  generation: number;
  /** Number of workers the supervisor wants. */
  workers: number;
  /** Port to use when the app's Deno.serve/Deno.listen gives none. */
  port?: number;
  /** Drain deadline used when the worker drains on its own (supervisor gone). */
  orphanGraceMs: number;
  /** How long a draining server keeps answering (with `Connection: close`) before it shuts down. */
  closeWindowMs: number;
  /** Requests after which the worker asks to be replaced (0: never). */
  maxRequests: number;
}

/** Puts worker settings into a preload URL's query (no env permission needed to read them). */
export function settingsToQuery(settings: WorkerSettings): string {
  const query = new URLSearchParams({
    id: String(settings.id),
    generation: String(settings.generation),
    workers: String(settings.workers),
  });
  if (settings.port !== undefined) query.set("port", String(settings.port));
  query.set("orphanGrace", String(settings.orphanGraceMs));
  query.set("closeWindow", String(settings.closeWindowMs));
  query.set("maxRequests", String(settings.maxRequests));
  return query.toString();
}

/** Reads worker settings back from a preload URL. */
export function settingsFromUrl(url: string): WorkerSettings {
  const query = new URL(url).searchParams;
  const port = query.get("port");
  return {
    id: Number(query.get("id") ?? 0),
    generation: Number(query.get("generation") ?? 1),
    workers: Number(query.get("workers") ?? 1),
    port: port === null ? undefined : Number(port),
    orphanGraceMs: Number(query.get("orphanGrace") ?? 1000),
    closeWindowMs: Number(query.get("closeWindow") ?? 0),
    maxRequests: Number(query.get("maxRequests") ?? 0),
  };
}

/** The settings a custom process's preload reads from its own module URL's query. */
export interface ProcessSettings {
  name: string;
  index: number;
  generation: number;
  args: Record<string, unknown>;
  orphanGraceMs: number;
}

/** Puts process settings into a preload URL's query. */
export function processSettingsToQuery(settings: ProcessSettings): string {
  return new URLSearchParams({
    name: settings.name,
    index: String(settings.index),
    generation: String(settings.generation),
    args: JSON.stringify(settings.args),
    orphanGrace: String(settings.orphanGraceMs),
  }).toString();
}

/** Reads process settings back from a preload URL. */
export function processSettingsFromUrl(url: string): ProcessSettings {
  const query = new URL(url).searchParams;
  return {
    name: query.get("name") ?? "",
    index: Number(query.get("index") ?? 0),
    generation: Number(query.get("generation") ?? 1),
    args: JSON.parse(query.get("args") ?? "{}"),
    orphanGraceMs: Number(query.get("orphanGrace") ?? 1000),
  };
}

/** Marks the default export of a custom-process entry written with `defineProcess`. */
export const PROCESS_BRAND = Symbol.for("hotreload.process");

/** The global slot through which mod.ts (in the app) reaches the preload. */
export const BRIDGE_KEY = Symbol.for("hotreload.bridge");

/** What the preload offers to mod.ts through {@link BRIDGE_KEY}. */
export interface Bridge {
  role: "worker" | "process";
  /** Worker identity; undefined in a custom process. */
  info?: { id: number; generation: number; workers: number; port?: number };
  /** Custom-process identity; undefined in a worker. */
  process?: { name: string; index: number; generation: number; args: Record<string, unknown> };
  ready(): void;
  deferReady(): void;
  onShutdown(hook: () => unknown): void;
  isDraining(): boolean;
}
