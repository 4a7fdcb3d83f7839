/** `hotreload list`: the instances recorded under .hotreload/ here, running or stale. */
import { findInstances } from "../../control/instance_dir.ts";
import { projectDir } from "../../control/instances.ts";
import { parseControlArgs } from "../control_args.ts";
import { LIST_HELP } from "../help.ts";
import { formatUptime } from "./status.ts";

export function listCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("list", LIST_HELP, argv);
  if (!args) return Promise.resolve(0);
  const { values } = args;
  const dir = projectDir(Deno.cwd());
  const instances = findInstances(dir).map((found) => ({
    name: found.name,
    state: found.state,
    pid: found.record?.pid ?? null,
    entry: found.record?.entry ?? null,
    workers: found.record?.workers ?? null,
    port: found.record?.port ?? null,
    startedAt: found.record?.startedAt ?? null,
  }));
  if (values.json) {
    console.log(JSON.stringify(instances, null, 2));
  } else if (instances.length === 0) {
    console.log(`no instances recorded under ${dir}/.hotreload`);
  } else {
    console.log(
      [
        "NAME".padEnd(16),
        "STATE".padEnd(8),
        "PID".padEnd(8),
        "UPTIME".padEnd(8),
        "PORT".padEnd(6),
        "ENTRY",
      ].join(" "),
    );
    for (const i of instances) {
      const up = i.state === "running" ? Date.now() - Date.parse(i.startedAt!) : null;
      console.log([
        i.name.padEnd(16),
        i.state.padEnd(8),
        String(i.pid ?? "-").padEnd(8),
        formatUptime(up).padEnd(8),
        String(i.port ?? "-").padEnd(6),
        i.entry ?? "(invalid record)",
      ].join(" "));
    }
  }
  return Promise.resolve(0);
}
