/** `hotreload run`: validate everything, claim the instance, supervise until stopped. */
import {
  type Claim,
  claimInstance,
  instanceDir,
  type InstanceRecord,
  lockTakeover,
  orphansOf,
  runningInstance,
} from "../../control/instance_dir.ts";
import { newHopKey } from "../../control/worker_records.ts";
import { log, setupLogging } from "../../log/mod.ts";
import { denoSource, resolveDeno } from "../deno_path.ts";
import { checkChildDeno } from "../deno_version.ts";
import { ensurePortFree } from "../port_check.ts";
import { Supervisor, type SupervisorOptions } from "../../supervisor/supervisor.ts";
import { runtimeBase } from "../../supervisor/runtime_modules.ts";
import { parseRunArgs } from "../run_args.ts";
import type { RunConfig } from "../../config/settings.ts";
import { checkDenoFlags } from "../flag_check.ts";
import { HotreloadError, UsageError } from "../../errors.ts";
import { checkEnvFiles, envFiles } from "../../supervisor/env_files.ts";
import { runHelp, VERSION } from "../help.ts";
import { detach, detachedOutput } from "../detach.ts";
import { register } from "../../control/registry.ts";

export async function runCommand(argv: string[]): Promise<number> {
  const cwd = Deno.cwd();
  const config = parseRunArgs(argv, cwd);
  if (config.help) {
    console.log(runHelp());
    return 0;
  }
  if (config.detach) {
    // The checks below run in the background supervisor: what fails there comes back here.
    return await detach(config, argv);
  }
  // Every check that can refuse the start happens before anything is started.
  const deno = resolveDeno(config.deno);
  await checkChildDeno(deno, denoSource(config.deno));
  await checkDenoFlags(deno, config.denoFlags, cwd);
  for (const process of config.processes) {
    if (process.permissions) {
      await checkDenoFlags(deno, process.permissions, cwd, `the permissions of "${process.name}"`);
    }
  }
  const envs = envFiles(config.denoFlags);
  const envError = checkEnvFiles(envs, cwd);
  if (envError) throw new HotreloadError(`${envError}; fix it and start again`);
  if (config.watch) {
    // Loaded only when watching, so `--no-watch` production runs never pay for it.
    const { checkWatchPaths } = await import("../../watch/mod.ts");
    try {
      checkWatchPaths(cwd, config.watch.paths);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const dir = instanceDir(cwd, config.name);
  setupLogging(config.logFormat);
  if (config.takeover) {
    const predecessor = runningInstance(dir);
    if (predecessor) return await takeOver(config, { deno, envs, predecessor });
    log.info(
      "takeover.none",
      `no instance named "${config.name}" runs here: nothing to take over; starting it`,
      { role: "supervisor" },
    );
  }
  // A supervisor of this name that died may have left its workers serving on
  // the port, waiting for a successor (--orphan-grace): this run adopts them.
  const orphans = orphansOf(dir);
  if (config.port !== undefined && !orphans) ensurePortFree(config.port);
  // Its orphans send requests on to our workers with their supervisor's secret.
  const hopKey = orphans?.hopKey ?? newHopKey();
  const claim = claimInstance(cwd, recordOf(config, hopKey));
  const output = detachedOutput(claim.dir);
  const registered = registerClaim(claim);
  try {
    return await supervise(config, { deno, envs, dir: claim.dir, orphans, hopKey });
  } finally {
    registered.unregister();
    output?.();
    claim.release();
  }
}

/**
 * `run --takeover` of a running instance: our supervisor starts beside it
 * (src/supervisor/takeover.ts) and claims the name once the old one is gone.
 */
async function takeOver(
  config: RunConfig,
  { deno, envs, predecessor }: { deno: string; envs: string[]; predecessor: InstanceRecord },
): Promise<number> {
  const { cwd, name } = config;
  // The old instance's workers hold the port: checking it would refuse every takeover.
  if (
    config.port !== undefined && predecessor.port !== undefined && config.port !== predecessor.port
  ) {
    ensurePortFree(config.port);
  }
  const lock = lockTakeover(cwd, name);
  // A detached instance's successor (upgrade) writes to the same file.
  const output = detachedOutput(instanceDir(cwd, name));
  let claim: Claim | undefined;
  let registered: { unregister(): void } | undefined;
  log.info(
    "takeover.start",
    `taking over "${name}" (supervisor pid ${predecessor.pid}, hotreload ` +
      `${predecessor.version ?? "of an unknown version"}): it serves until our workers are ready`,
    { role: "supervisor", pid: predecessor.pid },
  );
  try {
    // The old instance's workers send requests on to ours with its secret: ours keep it.
    const hopKey = predecessor.hopKey ?? newHopKey();
    return await supervise(config, {
      deno,
      envs,
      hopKey,
      dir: instanceDir(cwd, name),
      takingOver: {
        predecessor,
        claim() {
          claim = claimInstance(cwd, recordOf(config, hopKey));
          registered = registerClaim(claim);
          // The takeover is over: a later one may begin (and a SIGKILL now leaves no lock behind).
          lock.release();
        },
      },
    });
  } finally {
    registered?.unregister();
    output?.();
    claim?.release();
    lock.release();
  }
}

/** Records a claimed instance in the user's registry (list --all); says so when it cannot. */
function registerClaim(claim: Claim): { unregister(): void } {
  let registered;
  try {
    registered = register(claim.record);
  } catch (error) {
    registered = { unregister() {}, error: (error as Error).message };
  }
  if (registered.error) {
    log.warn(
      "registry.failed",
      `not in the registry of running instances (list --all will not show it): ${registered.error}`,
      { role: "supervisor" },
    );
  }
  return registered;
}

/** What the instance's record says of this run. */
function recordOf(
  config: RunConfig,
  hopKey: string,
): Omit<InstanceRecord, "pid" | "startTime"> {
  return {
    name: config.name,
    cwd: config.cwd,
    entry: config.entry,
    workers: config.workers,
    port: config.port,
    graceMs: config.grace,
    startedAt: new Date().toISOString(),
    version: VERSION,
    hopKey,
  };
}

/** Runs the supervisor of this instance until it stops; its exit code. */
function supervise(
  config: RunConfig,
  { deno, envs, dir, orphans, takingOver, hopKey }: {
    deno: string;
    envs: string[];
    dir: string;
    hopKey: string;
    orphans?: SupervisorOptions["orphans"];
    takingOver?: SupervisorOptions["takingOver"];
  },
): Promise<number> {
  const { cwd } = config;
  return new Supervisor({
    ...config,
    deno,
    hopKey,
    runtimeBase: runtimeBase(dir),
    instanceDir: dir,
    checkEnv: envs.length > 0 ? () => checkEnvFiles(envs, cwd) : undefined,
    orphans,
    takingOver,
    version: VERSION,
    // Env files reload the workers too, whatever --ext says; directories named for a kind of
    // child (--worker-dir, a process's watch) are watched whatever a .gitignore says.
    watch: config.watch
      ? {
        ...config.watch,
        root: cwd,
        alsoFiles: envs,
        namedDirs: [
          ...config.workerDirs.map((path) => ({ path, flag: "--worker-dir" })),
          ...config.processes.flatMap((process) =>
            (process.watch ?? []).map((path) => ({
              path,
              flag: `the "${process.name}" process's watch`,
            }))
          ),
        ],
      }
      : undefined,
  }).run();
}
