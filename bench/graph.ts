/**
 * `deno task bench graph`: what computing a module graph costs (module_graph.ts
 * runs it in the background at start and after each reload, so no change
 * waits for it): wall time and CPU of `deno info --json` for the examples and
 * for generated apps of 100 and 500 local modules, median of 5 runs each.
 */
import { localModules } from "../src/supervisor/module_graph.ts";
import { machine, median, table } from "./lib.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const RUNS = 5;

/** An app of `n` local modules: main.ts imports 10 hubs, each hub n/10 leaves. */
async function generatedApp(n: number): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-graph-" });
  const hubs = 10;
  const leaves = Math.max(0, n - hubs - 1);
  const imports: string[] = [];
  for (let h = 0; h < hubs; h++) {
    const mine = Array.from({ length: leaves }, (_, i) => i).filter((i) => i % hubs === h);
    await Deno.writeTextFile(
      `${dir}/hub${h}.ts`,
      mine.map((i) => `export * from "./leaf${i}.ts";`).join("\n") +
        `\nexport const hub${h} = 1;\n`,
    );
    for (const i of mine) {
      await Deno.writeTextFile(`${dir}/leaf${i}.ts`, `export const leaf${i} = ${i};\n`);
    }
    imports.push(`import { hub${h} } from "./hub${h}.ts";`);
  }
  await Deno.writeTextFile(
    `${dir}/main.ts`,
    `${imports.join("\n")}\nDeno.serve(() => new Response("ok"));\n`,
  );
  return dir;
}

async function measure(cwd: string, entry: string) {
  const walls: number[] = [];
  const cpus: number[] = [];
  let files = 0;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    const output = await new Deno.Command("sh", {
      // `time -p` style CPU from /usr/bin/time is not everywhere: use the shell's `times`.
      args: ["-c", `"$0" info --json "$1" > out.json; times`, Deno.execPath(), entry],
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    walls.push(performance.now() - started);
    // The second line of `times`: children's user and system time, e.g. "0m0.120s 0m0.030s".
    const line = new TextDecoder().decode(output.stdout).trim().split("\n")[1] ?? "";
    const seconds = [...line.matchAll(/(\d+)m([\d.]+)s/g)].map((m) =>
      Number(m[1]) * 60 + Number(m[2])
    );
    cpus.push((seconds[0] + seconds[1]) * 1000);
    files = localModules(JSON.parse(await Deno.readTextFile(`${cwd}/out.json`))).size;
    await Deno.remove(`${cwd}/out.json`);
  }
  return { files, wall: median(walls), cpu: median(cpus) };
}

export async function benchGraph(): Promise<string> {
  const rows: (string | number)[][] = [];
  const subjects: Array<[string, string, string]> = [
    ["examples/hello (the workers)", `${ROOT}examples/hello`, "main.ts"],
    ["examples/queue (a custom process)", `${ROOT}examples/queue`, "consumer.ts"],
  ];
  const generated: string[] = [];
  for (const n of [100, 500]) {
    const dir = await generatedApp(n);
    generated.push(dir);
    subjects.push([`a generated app of ${n} local modules`, dir, "main.ts"]);
  }
  try {
    for (const [label, cwd, entry] of subjects) {
      const { files, wall, cpu } = await measure(cwd, entry);
      rows.push([label, files, Math.round(wall), Math.round(cpu)]);
    }
  } finally {
    for (const dir of generated) await Deno.remove(dir, { recursive: true });
  }
  return [
    "## Module graphs",
    "",
    "`deno info --json` per entry, as hotreload runs it in the background at start and after each " +
    "reload (no change waits for it); median of 5.",
    "",
    machine(),
    "",
    table(["entry", "local files", "wall ms", "CPU ms"], rows),
  ].join("\n");
}
