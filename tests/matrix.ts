/**
 * The promise matrix (tests/scenarios/matrix.ts run for each switch and
 * handover, each in a network namespace of its own): what every mode
 * promises, for the test that asserts it and the bench that reports it.
 */
import { runScenario } from "./netns.ts";
import { racesAllowed, type Seen } from "./load.ts";

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
 * With `tcp_migrate_req=0` and no steering, the kernel resets the
 * connections queued on a listener at the moment it closes: the documented
 * bound there, per trigger. It covers keep-alive clients too: one answered
 * with `Connection: close` (its worker left service; recycles here replace
 * a worker about every second) opens a new connection, as exposed as any
 * other (measured: 1 of 9,864 keep-alive requests once, in a CI run).
 */
export const UNMIGRATED_BOUND = 0.01;

export function runRow(row: (typeof ROWS)[number]): Promise<MatrixRow> {
  return runScenario<MatrixRow>(
    "matrix",
    { switch: row.switch, handover: row.handover },
    row.migrate,
  );
}

/**
 * How many failures a row may have for a trigger and client kind, as its
 * mode promises: none for a planned trigger (the draining worker stops
 * listening at once and answers every connection it has), except new
 * connections (a new-connection client's, or a keep-alive client's after a
 * `Connection: close`) queued on a closing listener with neither steering
 * nor `tcp_migrate_req=1`; a crash also fails what the killed worker held.
 */
export function allowedFailures(row: MatrixRow, trigger: string, seen: Seen): number {
  const unmigrated = !row.steered && row.handover === "none";
  return (trigger === "crash" ? CLIENTS : 0) +
    (unmigrated ? Math.floor(seen.ok * UNMIGRATED_BOUND) : 0);
}

/**
 * How many of a trigger's failures may be handshake resets beyond
 * `allowedFailures` (load.ts `handshakeReset`): HANDSHAKE_RACES without
 * steering, where a listener closes while handshakes may be on their way to
 * it; none steered.
 */
export function allowedRaces(row: MatrixRow): number {
  return racesAllowed(row.steered);
}

/**
 * Old code stops answering once each old worker has acted on the signal
 * that takes it out of service (SIGUSR2 held, SIGTERM draining): a worker
 * starved of CPU for more than 50 ms (4 new workers start at once on 2
 * cores) can answer a few keep-alive requests late. The documented bound,
 * per trigger (measured: 0 in most runs, 21 of about 4,000 once).
 */
export const STALE_BOUND = 0.01;
/**
 * Without steering, a new worker takes new connections from the moment it
 * binds, before it is ready and before the old workers leave service: a
 * new-connection client can get new code while keep-alive clients of the old
 * workers still get old code. Measured: 0 in most runs, 6.4 % of one run's
 * answers in a CI run under load. The documented bound.
 */
export const UNSTEERED_STALE_BOUND = 0.1;

/** How many stale answers a row may have: rolling mixes generations by design. */
export function allowedStale(row: MatrixRow, trigger: string, seen: Seen): number {
  if (row.switch === "rolling" || !NEW_CODE.includes(trigger)) return Infinity;
  return Math.floor(seen.ok * (row.steered ? STALE_BOUND : UNSTEERED_STALE_BOUND));
}
