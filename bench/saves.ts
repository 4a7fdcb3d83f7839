/**
 * `deno task bench saves`: how long real saves take to settle, as inotify
 * (Deno.watchFs) sees them: the time from the first to the last event of one
 * save, for the ways files get saved. The events backend's default debounce
 * is chosen from these (src/watch/create.ts); the poller keeps its own rules.
 */
import { machine, median, table } from "./lib.ts";

const FILES = 40;

async function run(cmd: string, args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command(cmd, { args, cwd, stdout: "null", stderr: "piped" }).output();
  if (!out.success) {
    throw new Error(`${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** A project of FILES small modules in a git repository with a second branch. */
async function project(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-saves-" });
  await Deno.mkdir(`${dir}/src`);
  for (let i = 0; i < FILES; i++) {
    await Deno.writeTextFile(`${dir}/src/m${i}.ts`, `export const value${i} = ${i};\n`);
  }
  await Deno.writeTextFile(`${dir}/main.ts`, `console.log("v1");\n`);
  for (
    const args of [["init", "-q"], ["add", "."], [
      "-c",
      "user.email=b@b",
      "-c",
      "user.name=b",
      "commit",
      "-qm",
      "one",
    ], ["checkout", "-qb", "two"]]
  ) {
    await run("git", args, dir);
  }
  for (let i = 0; i < FILES; i += 2) {
    await Deno.writeTextFile(`${dir}/src/m${i}.ts`, `export const value${i} = ${i} + 1;\n`);
  }
  await run("git", ["-c", "user.email=b@b", "-c", "user.name=b", "commit", "-qam", "two"], dir);
  return dir;
}

/** The ways a save happens, each a function of the project directory. */
const SAVES: Record<string, (dir: string) => Promise<void>> = {
  "write in place": (dir) => Deno.writeTextFile(`${dir}/main.ts`, `console.log("x");\n`),
  "atomic save (temp file, rename)": async (dir) => {
    await Deno.writeTextFile(`${dir}/.main.ts.tmp`, `console.log("y");\n`);
    await Deno.rename(`${dir}/.main.ts.tmp`, `${dir}/main.ts`);
  },
  "sed -i": (dir) => run("sed", ["-i", "s/console/console/", "main.ts"], dir),
  "vim's save (4913 probe, backup, write)": async (dir) => {
    await Deno.writeTextFile(`${dir}/4913`, "");
    await Deno.remove(`${dir}/4913`);
    await Deno.rename(`${dir}/main.ts`, `${dir}/main.ts~`);
    await Deno.writeTextFile(`${dir}/main.ts`, `console.log("z");\n`);
    await Deno.remove(`${dir}/main.ts~`);
  },
  [`deno fmt over ${FILES + 1} files`]: async (dir) => {
    for (let i = 0; i < FILES; i++) {
      await Deno.writeTextFile(`${dir}/src/m${i}.ts`, `export const value${i}   =   ${i};\n`);
    }
    await new Promise((resolve) => setTimeout(resolve, 300)); // the unformatted writes settle first
    await run(Deno.execPath(), ["fmt", "--quiet", "."], dir);
  },
  [`git checkout (${FILES / 2} files differ)`]: async (dir) => {
    await run("git", ["checkout", "-qf", "master"], dir).catch(() =>
      run("git", ["checkout", "-qf", "main"], dir)
    );
    await run("git", ["checkout", "-qf", "two"], dir);
  },
};

/**
 * Of one `save`, as Deno.watchFs reports it: the time from its first to its
 * last event, and the longest quiet gap between two of its events (what a
 * trailing debounce must outlast to keep the save in one batch).
 */
async function settle(
  dir: string,
  save: (dir: string) => Promise<void>,
): Promise<{ span: number; gap: number }> {
  const watcher = Deno.watchFs(dir);
  const times: number[] = [];
  const reading = (async () => {
    for await (const event of watcher) {
      if (event.paths.some((path) => !path.includes("/.git/"))) times.push(performance.now());
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 100));
  await save(dir);
  // Quiet for a second: the save is over.
  let seen = -1;
  while (seen !== times.length) {
    seen = times.length;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  watcher.close();
  await reading;
  // The fmt row writes unformatted files first, then pauses 300 ms: only the last burst is the save.
  const start = times.findLastIndex((t, i) => i > 0 && t - times[i - 1] >= 250);
  const own = start === -1 ? times : times.slice(start);
  if (own.length === 0) return { span: 0, gap: 0 };
  const gaps = own.slice(1).map((t, i) => t - own[i]);
  return { span: own.at(-1)! - own[0], gap: Math.max(0, ...gaps) };
}

export async function benchSaves(rounds = 5): Promise<string> {
  const dir = await project();
  const rows: (string | number)[][] = [];
  try {
    for (const [name, save] of Object.entries(SAVES)) {
      const results = [];
      for (let i = 0; i < rounds; i++) results.push(await settle(dir, save));
      const spans = results.map((r) => r.span);
      const gaps = results.map((r) => r.gap);
      rows.push([
        name,
        median(spans).toFixed(1),
        Math.max(...spans).toFixed(1),
        Math.max(...gaps).toFixed(1),
      ]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return [
    "### How long saves take to settle (events backend)",
    "",
    machine(),
    "",
    `First to last inotify event of one save, and the longest gap between two of its events, ` +
    `${rounds} times each:`,
    "",
    table(["save", "span median ms", "span max ms", "longest gap ms"], rows),
  ].join("\n");
}

if (import.meta.main) console.log(await benchSaves());
