/** `hotreload run`: validate everything, claim the instance, supervise until stopped. */
import { claimInstance } from "../../control/instance_dir.ts";
import { setupLogging } from "../../log/mod.ts";
import { resolveDeno } from "../deno_path.ts";
import { ensurePortFree } from "../port_check.ts";
import { Supervisor } from "../../supervisor/supervisor.ts";
import { runtimeBase } from "../../supervisor/runtime_modules.ts";
import { parseRunArgs } from "../run_args.ts";
import { checkDenoFlags } from "../flag_check.ts";
import { HotreloadError, UsageError } from "../../errors.ts";
import { checkEnvFiles, envFiles } from "../../supervisor/env_files.ts";
import { runHelp, VERSION } from "../help.ts";

/** How long an orphaned worker (supervisor gone) may drain before it exits on its own. */
const ORPHAN_GRACE_MS = 1000;

export async function runCommand(argv: string[]): Promise<number> {
  const cwd = Deno.cwd();
  const config = parseRunArgs(argv, cwd);
  if (config.help) {
    console.log(runHelp());
    return 0;
  }
  // Every check that can refuse the start happens before anything is started.
  const deno = resolveDeno(config.deno);
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
  if (config.port !== undefined) ensurePortFree(config.port);
  const claim = claimInstance(cwd, {
    name: config.name,
    cwd,
    entry: config.entry,
    workers: config.workers,
    port: config.port,
    graceMs: config.graceMs,
    startedAt: new Date().toISOString(),
  });
  setupLogging(config.logFormat);
  try {
    return await new Supervisor({
      name: config.name,
      instanceDir: claim.dir,
      processes: config.processes,
      maxMemoryMB: config.maxMemoryMB,
      memoryCheckIntervalMs: config.memoryCheckIntervalMs,
      launch: {
        cwd,
        runtimeBase: runtimeBase(claim.dir),
        deno,
        entry: config.entry,
        denoFlags: config.denoFlags,
        appArgs: config.appArgs,
        workers: config.workers,
        port: config.port,
        host: config.host,
        orphanGraceMs: ORPHAN_GRACE_MS,
        closeWindowMs: Math.min(config.closeWindowMs, config.graceMs),
        maxRequests: config.maxRequests ?? 0,
        heartbeatMs: Math.round(config.timeoutMs / 3),
        readyPath: config.readyPath,
        readyTimeoutMs: config.readyTimeoutMs,
        maxRequestsJitter: config.maxRequestsJitter,
      },
      graceMs: config.graceMs,
      readyTimeoutMs: config.readyTimeoutMs,
      timeoutMs: config.timeoutMs,
      spares: config.spares,
      oneStepSwitch: config.oneStepSwitch,
      handover: config.handover,
      reloadBatch: config.reloadBatch,
      metrics: config.metrics,
      checkEnv: envs.length > 0 ? () => checkEnvFiles(envs, cwd) : undefined,
      version: VERSION,
      watch: config.watch
        ? {
          root: cwd,
          paths: config.watch.paths.length > 0 ? config.watch.paths : undefined,
          extensions: config.watch.extensions,
          // Env files reload the workers too, whatever --ext says.
          alsoFiles: envs,
          ignore: config.watch.ignore,
          gitignore: config.watch.gitignore,
          debounceMs: config.watch.debounceMs,
          poll: config.watch.poll,
        }
        : undefined,
    }).run();
  } finally {
    claim.release();
  }
}
