/**
 * A worker's start-up work that needs none of its settings, done as this
 * module is evaluated: before a warm spare blocks on its handshake
 * (worker_preload.ts imports child_runtime.ts last), so that a spare pays
 * for it while it waits, not after it was released. Measured in a worker's
 * CPU profile here (a hello app, after the handshake): Deno's timers, loaded
 * at the first `setTimeout`, 1.2 ms; the first permission query, 1.2 ms.
 *
 * Only relative, dependency-free imports (worker_preload.ts says why).
 *
 * @module
 */

// Loads Deno's timers (node:timers behind the global setTimeout) now.
clearTimeout(setTimeout(() => {}, 0));

/** The variables that tell the app its slot (a released spare sets them once it knows it). */
export const SLOT_VARIABLES = ["HOTRELOAD_WORKER_ID", "HOTRELOAD_GENERATION"] as const;

/** One of SLOT_VARIABLES. */
export type SlotVariable = typeof SLOT_VARIABLES[number];

/** Those of SLOT_VARIABLES the app may read (so that setting them changes what it sees). */
export const writableSlotVariables: ReadonlySet<SlotVariable> = new Set(
  SLOT_VARIABLES.filter((name) => {
    try {
      return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted";
    } catch {
      return false; // no env permission at all: the app cannot read it either
    }
  }),
);
