/**
 * Runs a test scenario in its own network namespace, where the test may set
 * `net.ipv4.tcp_migrate_req=1` (the setting hotreload documents for zero
 * dropped connections) without touching the host. Needs root, as the test
 * machines and CI have. The scenario prints its result as JSON on its last line.
 */
const SCENARIOS = new URL("./scenarios/", import.meta.url).pathname;

export async function runScenario<T>(name: string, args: Record<string, unknown>): Promise<T> {
  const script = `${SCENARIOS}${name}.ts`;
  const shell = `ip link set lo up && sysctl -qw net.ipv4.tcp_migrate_req=1 && ` +
    `exec "${Deno.execPath()}" run -A "${script}" '${JSON.stringify(args)}'`;
  const output = await new Deno.Command("unshare", {
    args: ["-n", "--", "sh", "-c", shell],
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(120_000),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim();
  const stderr = new TextDecoder().decode(output.stderr);
  if (!output.success) {
    throw new Error(`scenario ${name} failed (exit ${output.code}):\n${stdout}\n${stderr}`);
  }
  return JSON.parse(stdout.split("\n").at(-1)!) as T;
}
