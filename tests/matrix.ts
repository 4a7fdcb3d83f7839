/**
 * The promise matrix (tests/scenarios/matrix.ts run for each switch and
 * handover, each in a network namespace of its own): what every mode
 * promises, for the test that asserts it and the bench that reports it.
 */
import { runScenario } from "./netns.ts";
import type { Seen } from "./load.ts";

/** One row: per client kind, per trigger. */
export interface MatrixRow {
  switch: "all" | "rolling";
  handover: "ebpf" | "kernel" | "none";
  steered: boolean;
  keepAlive: Record<string, Seen>;
  fresh: Record<string, Seen>;
}

/** The rows: tcp_migrate_req is 1 where the handover is the kernel's, else 0. */
export const ROWS = (["all", "rolling"] as const).flatMap((switchMode) =>
  (["ebpf", "kernel", "none"] as const).map((handover) => ({
    switch: switchMode,
    handover,
    migrate: handover === "kernel" ? 1 as const : 0 as const,
  }))
);

/** Triggers that bring new code, in the order they run. */
export const NEW_CODE = ["edit", "reload", "SIGHUP"];
/** Triggers a worker leaves by plan (drained, never killed). */
export const PLANNED = [...NEW_CODE, "recycle", "scale-up", "scale-down"];
/** Each load has this many clients: a crash fails at most the requests they had in flight. */
export const CLIENTS = 8;
/**
 * Without steering, a new connection may still reach a draining worker's
 * listener in the instant it closes: the documented bound, per trigger.
 */
export const UNSTEERED_BOUND = 0.01;

export function runRow(row: (typeof ROWS)[number]): Promise<MatrixRow> {
  return runScenario<MatrixRow>(
    "matrix",
    { switch: row.switch, handover: row.handover },
    row.migrate,
  );
}

/** How many failures a row may have for a trigger and client kind, as its mode promises. */
export function allowedFailures(row: MatrixRow, trigger: string, seen: Seen): number {
  // Without steering, a killed worker's queued connections are reset too (tcp_migrate_req=0).
  const unsteered = row.steered ? 0 : Math.floor(seen.ok * UNSTEERED_BOUND);
  return (trigger === "crash" ? CLIENTS : 0) + unsteered;
}

/** How many stale answers a row may have: none with the one-step switch (rolling mixes by design). */
export function allowedStale(row: MatrixRow, trigger: string, seen: Seen): number {
  if (row.switch === "rolling" || !NEW_CODE.includes(trigger)) return Infinity;
  if (row.steered) return 0;
  return Math.floor(seen.ok * UNSTEERED_BOUND);
}
