/**
 * `deno task bench [name...]`: runs the benchmarks side by side and prints
 * markdown sections (copied into docs/benchmarks.md). Names: startup, reload,
 * throughput, watch; none means all. The throughput bench needs wrk
 * (`apt-get install -y wrk`); the reload bench needs root for `unshare -n`.
 */
import { benchReload } from "./reload.ts";
import { benchStartup } from "./startup.ts";
import { benchThroughput } from "./throughput.ts";

const BENCHES: Record<string, () => Promise<string>> = {
  startup: benchStartup,
  reload: () => benchReload(),
  throughput: benchThroughput,
  watch: async () => {
    const { benchWatch, formatWatchBench } = await import("./watch.ts");
    return formatWatchBench(await benchWatch());
  },
};

const names = Deno.args.length > 0 ? Deno.args : Object.keys(BENCHES);
for (const name of names) {
  const bench = BENCHES[name];
  if (!bench) {
    console.error(`unknown benchmark "${name}"; choose from: ${Object.keys(BENCHES).join(", ")}`);
    Deno.exit(2);
  }
  console.log(await bench());
  console.log();
}
