/**
 * How children are started. A worker: `deno run --unstable-net --preload
 * <worker runtime> [user's deno flags] <entry> [app args]`; a custom process:
 * `deno run --preload <process runtime> [its permissions] <entry>`; both with
 * the HOTRELOAD_* variables; a worker also, where the app cannot tell
 * (malloc_tunables.ts), with GLIBC_TUNABLES for glibc, which its preload
 * removes before the app runs.
 */
import { isOwnFrame } from "./own_frames.ts";
import type { ChildSpec } from "../child/child.ts";
import type { ProcessConfig } from "../config/mod.ts";
import type { RunConfig } from "../config/settings.ts";
import {
  type ProcessSettings,
  WORKER_MALLOC_TUNABLES,
  type WorkerSettings,
} from "../runtime/protocol.ts";
import { TUNABLES, tunesMalloc } from "./malloc_tunables.ts";
import { NOTIFY_ENV } from "./sd_notify.ts";
import { INSTANCE_ENV, instanceToken } from "../control/worker_records.ts";
import { checkArguments, withTypeCheck } from "./type_check.ts";

/** The run's settings, with the deno that runs the children and where their runtime modules are. */
export type WorkerLaunch = Omit<RunConfig, "watch"> & {
  /** Directory URL (ending in "/") of the children's runtime modules. */
  runtimeBase: string;
  /** The deno executable (resolved). */
  deno: string;
  /** The ports the serving workers listen on, for a new worker's readiness. */
  ports?: number[];
  /** The instance's secret, which marks the requests its workers send on to each other (runtime/hop.ts). */
  hopKey: string;
};

/** How long an orphaned child (supervisor gone) may drain before it exits on its own. */
const ORPHAN_GRACE_MS = 1000;

// `deno run` suggests `deno serve` for `export default { fetch }` entries; the preload serves them.
const SERVE_HINT = /did you mean to run "?deno serve"?/;

/**
 * The spec of a spare worker: the workers' exact command, Deno flags and
 * environment, less what depends on a slot (it learns its id and generation
 * from its handshake, when it is released); and whether it gets the malloc
 * tunables (see releasedSpec).
 */
export function spareSpec(launch: WorkerLaunch): { spec: ChildSpec; tunedMalloc: boolean } {
  const spec = workerSpec(launch, -1, 0);
  const { HOTRELOAD_WORKER_ID: _id, HOTRELOAD_GENERATION: _generation, ...env } = spec.env;
  return {
    spec: { ...spec, label: "spare", env, settings: undefined },
    tunedMalloc: (spec.settings as WorkerSettings).dropMallocTunables === true,
  };
}

/**
 * Worker `spec` for a spare that started with the malloc tunables or not
 * (`tunedMalloc`): its preload removes them as the spare started, not as a
 * worker started now would (an env file may have changed in between).
 */
export function releasedSpec(spec: ChildSpec, tunedMalloc: boolean): ChildSpec {
  const settings: WorkerSettings = {
    ...(spec.settings as WorkerSettings),
    dropMallocTunables: tunedMalloc,
  };
  return { ...spec, settings };
}

/** Builds the spec of worker `id` of generation `generation`. */
export function workerSpec(launch: WorkerLaunch, id: number, generation: number): ChildSpec {
  const env = childEnv({
    HOTRELOAD_WORKER_ID: String(id),
    HOTRELOAD_WORKERS: String(launch.workers),
    [INSTANCE_ENV]: instanceToken(launch.hopKey),
    HOTRELOAD_GENERATION: String(generation),
  });
  if (launch.port !== undefined) env.PORT = String(launch.port);
  if (launch.host !== undefined) env.HOST = launch.host;
  const tuneMalloc = tunesMalloc(env, launch);
  if (tuneMalloc) env[TUNABLES] = WORKER_MALLOC_TUNABLES;
  const settings: WorkerSettings = {
    id,
    generation,
    workers: launch.workers,
    port: launch.port,
    ports: launch.ports,
    host: launch.host,
    heartbeatMs: heartbeatMs(launch),
    readyPath: launch.readyPath,
    readyTimeoutMs: launch.readyTimeout,
    orphanGraceMs: ORPHAN_GRACE_MS,
    orphanServeMs: launch.orphanGrace,
    closeWindowMs: launch.closeWindow,
    graceMs: launch.grace,
    hopKey: launch.hopKey,
    // Jitter spreads the limits so the workers do not all recycle at once.
    maxRequests: launch.maxRequests === undefined
      ? 0
      : launch.maxRequests + Math.floor(Math.random() * (launch.maxRequestsJitter + 1)),
    dropMallocTunables: tuneMalloc,
  };
  return {
    role: "worker",
    id,
    generation,
    label: `worker ${id}`,
    ...withTypeCheck(
      launch.deno,
      [
        "run",
        "--unstable-net",
        "--preload",
        `${launch.runtimeBase}worker_preload.ts`,
        ...launch.denoFlags,
        launch.entry,
        ...launch.appArgs,
      ],
      checkArguments(launch.denoFlags, launch.entry),
      env,
    ),
    settings,
    cwd: launch.cwd,
    dropLine: (line) => SERVE_HINT.test(line) || isOwnFrame(line, launch.runtimeBase),
  };
}

/** Children say "alive" three times per --timeout (0: never). */
function heartbeatMs(launch: WorkerLaunch): number {
  return Math.round(launch.timeout / 3);
}

function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...Deno.env.toObject(), HOTRELOAD: "1", ...extra };
  // systemd's notify socket is the supervisor's: a child that wrote to it would speak for the service.
  for (const name of NOTIFY_ENV) delete env[name];
  // Children write into our pipes, not a terminal: keep their output plain unless ours is a terminal.
  if (!Deno.stderr.isTerminal() && env.FORCE_COLOR === undefined) env.NO_COLOR = "1";
  return env;
}

/** Builds the spec of instance `index` of a custom process. */
export function processSpec(
  launch: WorkerLaunch,
  config: ProcessConfig,
  index: number,
  generation: number,
): ChildSpec {
  const flags = config.permissions ?? launch.denoFlags;
  // The args may hold secrets: they go in the handshake on stdin, never in argv or env.
  const settings: ProcessSettings = {
    name: config.name,
    index,
    generation,
    args: config.args,
    orphanGraceMs: ORPHAN_GRACE_MS,
    heartbeatMs: heartbeatMs(launch),
  };
  return {
    role: "process",
    id: `${config.name}#${index}`,
    generation,
    label: `${config.name}#${index}`,
    ...withTypeCheck(
      launch.deno,
      [
        "run",
        "--preload",
        `${launch.runtimeBase}process_preload.ts`,
        ...flags,
        config.entry,
      ],
      checkArguments(flags, config.entry),
      childEnv({
        HOTRELOAD_PROCESS_NAME: config.name,
        HOTRELOAD_PROCESS_INDEX: String(index),
        HOTRELOAD_GENERATION: String(generation),
      }),
    ),
    settings,
    cwd: launch.cwd,
    dropLine: (line) => isOwnFrame(line, launch.runtimeBase),
  };
}
