/**
 * `hotreload list`: the instances recorded under .hotreload/ here, running or
 * stale; `--all`: every running instance of this user (registry.ts).
 */
import { findInstances, instanceDir } from "../../control/instance_dir.ts";
import { projectDir } from "../../control/instances.ts";
import { registryDir, runningInstances } from "../../control/registry.ts";
import { sendControlRequest, socketPath } from "../../control/socket.ts";
import { HotreloadError } from "../../errors.ts";
import { parseControlArgs } from "../control_args.ts";
import { LIST_HELP } from "../help.ts";
import { formatUptime } from "./status.ts";

export function listCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("list", LIST_HELP, argv);
  if (!args) return Promise.resolve(0);
  const { values } = args;
  if (values.all) return listAll(values.json === true);
  const dir = projectDir(values.dir === undefined ? Deno.cwd() : Deno.realPathSync(values.dir));
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

/** `list --all`: every running instance of this user, with its current number of workers. */
async function listAll(json: boolean): Promise<number> {
  let records;
  try {
    records = runningInstances();
  } catch (error) {
    throw new HotreloadError(`cannot read ${registryDir()}: ${(error as Error).message}`);
  }
  const instances = await Promise.all(records.map(async (record) => {
    // The record says how many workers it started with; the supervisor knows how many now.
    const answer = await sendControlRequest(
      socketPath(instanceDir(record.cwd, record.name)),
      { cmd: "status" },
      2000,
    );
    const workers = answer.kind === "reply" && answer.reply.ok
      ? answer.reply.status?.supervisor.workers ?? record.workers
      : record.workers;
    return {
      name: record.name,
      dir: record.cwd,
      pid: record.pid,
      port: record.port ?? null,
      workers,
      startedAt: record.startedAt,
      uptimeMs: Date.now() - Date.parse(record.startedAt),
    };
  }));
  if (json) {
    console.log(JSON.stringify(instances, null, 2));
  } else if (instances.length === 0) {
    console.log("no hotreload instance of yours is running on this machine");
  } else {
    console.log(
      ["NAME".padEnd(16), "PID".padEnd(8), "PORT".padEnd(6), "WORKERS", "UPTIME".padEnd(8), "DIR"]
        .join(" "),
    );
    for (const i of instances) {
      console.log([
        i.name.padEnd(16),
        String(i.pid).padEnd(8),
        String(i.port ?? "-").padEnd(6),
        String(i.workers).padEnd(7),
        formatUptime(i.uptimeMs).padEnd(8),
        i.dir,
      ].join(" "));
    }
  }
  return 0;
}
