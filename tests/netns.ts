/**
 * Runs a Deno script in its own network namespace, where it may set
 * `net.ipv4.tcp_migrate_req` (the setting hotreload documents for zero
 * dropped connections) without touching the host. Needs root, as the test
 * machines and CI have. The script prints its result as JSON on its last
 * stdout line. The benchmarks use it too.
 */
import { npmFixtures } from "./outside.ts";

const SCENARIOS = new URL("./scenarios/", import.meta.url).pathname;

/** Runs `script` with `args` in a fresh netns (loopback up, tcp_migrate_req = `migrate`). */
export async function runInNetns<T>(
  script: string,
  args: string[],
  { migrate = 1, timeoutMs }: { migrate?: 0 | 1; timeoutMs?: number } = {},
): Promise<T> {
  const quoted = args.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(" ");
  const shell = `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=${migrate} && ` +
    `exec "${Deno.execPath()}" run -A "${script}" ${quoted}`;
  const output = await new Deno.Command("unshare", {
    args: ["-n", "--", "sh", "-c", shell],
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: timeoutMs === undefined ? undefined : AbortSignal.timeout(timeoutMs),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim();
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`${script} failed (exit ${output.code}):\n${stdout}\n${stderr}`);
  }
  return JSON.parse(stdout.split("\n").at(-1)!) as T;
}

/**
 * Runs tests/scenarios/<name>.ts in a netns with tcp_migrate_req=`migrate`
 * (default 1); `args` go as one JSON argument.
 */
export async function runScenario<T>(
  name: string,
  args: Record<string, unknown>,
  migrate: 0 | 1 = 1,
): Promise<T> {
  // A netns has no route to the npm registry: the scenarios' npm packages are cached first.
  await npmFixtures();
  return await runInNetns<T>(`${SCENARIOS}${name}.ts`, [JSON.stringify(args)], {
    migrate,
    timeoutMs: 120_000,
  });
}
