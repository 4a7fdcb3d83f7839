/**
 * Picks the instance a control command acts on: the one named, or the only one
 * running from this directory. Stale records met on the way are removed.
 */
import { NotRunningError, UsageError } from "../errors.ts";
import {
  findInstances,
  findProjectDir,
  type InstanceRecord,
  orphansOf,
  removeStaleInstance,
  whyStale,
} from "./instance_dir.ts";

/**
 * The project directory a control command run from `cwd` acts on (the
 * nearest with a `.hotreload/`); says so on stderr when it is not `cwd`.
 */
export function projectDir(cwd: string): string {
  const dir = findProjectDir(cwd);
  if (dir !== cwd) console.error(`hotreload: acting on the instances of ${dir}`);
  return dir;
}

/** Returns the running instance to act on, or throws (exit 3 when none runs). */
export function selectInstance(cwd: string, name?: string): InstanceRecord {
  const found = findInstances(cwd);
  for (const instance of found) {
    if (instance.state === "running") continue;
    // Its workers still serve, waiting for a successor (--orphan-grace): keep what finds them.
    if (instance.state === "stale" && orphansOf(instance.dir)) continue;
    removeStaleInstance(instance.dir);
    const why = instance.state === "stale" ? whyStale(instance.record) : "it is not a valid record";
    console.error(`hotreload: removed the stale record of "${instance.name}" (${why})`);
  }
  const running = found.flatMap((instance) => instance.state === "running" ? [instance] : []);
  if (name !== undefined) {
    const match = running.find((instance) => instance.name === name);
    if (!match) throw new NotRunningError(`no instance named "${name}" is running in ${cwd}`);
    return match.record;
  }
  if (running.length === 0) {
    throw new NotRunningError(
      `no hotreload instance is running in ${cwd}; start one with "hotreload run <entry>"`,
    );
  }
  if (running.length > 1) {
    const names = running.map((instance) => instance.name).join(", ");
    throw new UsageError(`several instances are running here (${names}); choose one with --name`);
  }
  return running[0].record;
}
