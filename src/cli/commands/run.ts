/** `hotreload run`: validate everything, claim the instance, supervise until stopped. */
import { claimInstance, instanceDir, orphansOf } from "../../control/instance_dir.ts";
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
  // A supervisor of this name that died may have left its workers serving on
  // the port, waiting for a successor (--orphan-grace): this run adopts them.
  const orphans = orphansOf(instanceDir(cwd, config.name));
  if (config.port !== undefined && !orphans) ensurePortFree(config.port);
  const claim = claimInstance(cwd, {
    name: config.name,
    cwd,
    entry: config.entry,
    workers: config.workers,
    port: config.port,
    graceMs: config.grace,
    startedAt: new Date().toISOString(),
  });
  setupLogging(config.logFormat);
  try {
    return await new Supervisor({
      ...config,
      deno,
      runtimeBase: runtimeBase(claim.dir),
      instanceDir: claim.dir,
      checkEnv: envs.length > 0 ? () => checkEnvFiles(envs, cwd) : undefined,
      orphans,
      version: VERSION,
      // Env files reload the workers too, whatever --ext says.
      watch: config.watch ? { ...config.watch, root: cwd, alsoFiles: envs } : undefined,
    }).run();
  } finally {
    claim.release();
  }
}
