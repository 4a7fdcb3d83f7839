/** Shared pieces of the benchmarks: statistics, tables, processes, namespaces. */

export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
export const CLI = `${ROOT}/cli.ts`;

export function median(values: number[]): number {
  return percentile(values, 50);
}

/** Nearest-rank percentile. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))];
}

/** A markdown table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Machine and Deno version, for the top of every result. */
export function machine(): string {
  const cpu = Deno.readTextFileSync("/proc/cpuinfo").match(/model name\s*:\s*(.*)/)?.[1] ?? "?";
  const memGiB = Math.round(Deno.systemMemoryInfo().total / 2 ** 30);
  return `${Deno.build.os} ${Deno.build.arch}, ${navigator.hardwareConcurrency} cores (${cpu}), ` +
    `${memGiB} GiB; Deno ${Deno.version.deno}; ${new Date().toISOString().slice(0, 10)}`;
}

export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Polls until `check` is truthy or the deadline passes (then throws). */
export async function until<T>(check: () => T | Promise<T>, what: string, timeoutMs = 30_000) {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const value = await check();
      if (value) return value;
    } catch { /* not yet */ }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error(`benchmark timed out waiting for ${what}`);
}

/** Resident set size of a process in KiB, from /proc. */
export function rssKiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(status.match(/VmRSS:\s+(\d+)/)?.[1] ?? NaN);
}

/** CPU time (user + system) of a process in clock ticks (100 per second here). */
export function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * Runs a Deno script inside a fresh network namespace with loopback up and
 * `net.ipv4.tcp_migrate_req` set to `migrate` (the host's setting is never
 * touched), and returns what it printed as JSON on its last stdout line.
 */
export async function runInNetns<T>(script: string, args: string[], migrate: 0 | 1): Promise<T> {
  const command = `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=${migrate} && ` +
    `exec "${Deno.execPath()}" run -A "${script}" ${args.map((a) => `'${a}'`).join(" ")}`;
  const output = await new Deno.Command("unshare", {
    args: ["-n", "--", "sh", "-c", command],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const lines = new TextDecoder().decode(output.stdout).trim().split("\n");
  if (!output.success) throw new Error(`${script} failed:\n${lines.join("\n")}`);
  return JSON.parse(lines.at(-1)!) as T;
}

/** `deno` arguments that run hotreload on `main.ts` with `workers` workers on `port`. */
export function hotreloadArgs(workers: number | string, port: number, extra: string[] = []) {
  return [
    "run",
    "-A",
    CLI,
    "run",
    "main.ts",
    "-N",
    "-w",
    String(workers),
    "--port",
    String(port),
    ...extra,
  ];
}

/** Starts `deno <args>` in `cwd` with no input and its output discarded. */
export function spawnQuiet(args: string[], cwd: string, env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}
