/**
 * `deno task bench [name...]`: runs the benchmarks one after another (each
 * compares its subjects side by side in one run), prints markdown sections,
 * and writes each into docs/benchmarks.md between its markers. Names:
 * startup, reload, edit (the reload bench's edit loop alone), reload-load, throughput,
 * throughput-paired,
 * request-path, watch, fix, saves, matrix, graph, takeover, sticky, spread; none means all but edit. The throughput benches, sticky, spread and reload-load benches
 * need wrk (`apt-get install -y wrk`); the reload and spread benches need root for
 * `unshare -n`.
 */
import { benchFix } from "./fix.ts";
import { benchGraph } from "./graph.ts";
import { benchMatrix } from "./matrix.ts";
import { benchReload, editLoop } from "./reload.ts";
import { benchReloadLoad } from "./reload_load.ts";
import { benchRequestPath } from "./request_path.ts";
import { benchSaves } from "./saves.ts";
import { benchStartup } from "./startup.ts";
import { benchSpread } from "./spread.ts";
import { benchSticky } from "./sticky.ts";
import { benchTakeover } from "./takeover.ts";
import { benchThroughput } from "./throughput.ts";
import { benchThroughputPaired } from "./throughput_paired.ts";

const BENCHES: Record<string, () => Promise<string>> = {
  startup: benchStartup,
  reload: () => benchReload(),
  edit: () => editLoop(20),
  "reload-load": () => benchReloadLoad(),
  throughput: benchThroughput,
  "throughput-paired": () => benchThroughputPaired(),
  "request-path": () => benchRequestPath(),
  fix: benchFix,
  saves: () => benchSaves(),
  matrix: benchMatrix,
  graph: benchGraph,
  takeover: benchTakeover,
  sticky: benchSticky,
  spread: benchSpread,
  watch: async () => {
    const { benchWatch, formatWatchBench } = await import("./watch.ts");
    return formatWatchBench(await benchWatch());
  },
};

const DOC = new URL("../docs/benchmarks.md", import.meta.url);

/** Replaces the text between `<!-- bench:name -->` and `<!-- /bench:name -->`, or appends it. */
export function placeSection(doc: string, name: string, section: string): string {
  const start = `<!-- bench:${name} -->`;
  const end = `<!-- /bench:${name} -->`;
  const block = `${start}\n${section.trim()}\n${end}`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from === -1 || to === -1) return `${doc.trimEnd()}\n\n${block}\n`;
  return doc.slice(0, from) + block + doc.slice(to + end.length);
}

if (import.meta.main) {
  // The edit loop alone is part of the reload bench already.
  const names = Deno.args.length > 0
    ? Deno.args
    : Object.keys(BENCHES).filter((name) => name !== "edit");
  const unknown = names.filter((name) => !BENCHES[name]);
  if (unknown.length > 0) {
    console.error(
      `unknown benchmark "${unknown[0]}"; choose from: ${Object.keys(BENCHES).join(", ")}`,
    );
    Deno.exit(2);
  }
  for (const name of names) {
    const section = await BENCHES[name]();
    console.log(section + "\n");
    const doc = await Deno.readTextFile(DOC).catch(() => "# Benchmarks\n");
    await Deno.writeTextFile(DOC, placeSection(doc, name, section));
  }
  // Keep the document as `deno fmt` wants it (the project's check runs fmt --check).
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", DOC.pathname] }).output();
}
