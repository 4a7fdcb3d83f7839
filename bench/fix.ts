/**
 * `deno task bench fix`: the edit loop while the code is broken. How long
 * from saving a fix of a broken entry to the first good answer (median of 5
 * saves, each after the workers have failed for a while), and how many log
 * lines a crash loop writes per minute.
 */
import { freePort, hotreloadArgs, machine, median, until } from "./lib.ts";

const GOOD = `Deno.serve((_req) => new Response("fixed"));\n`;
const BROKEN = `Deno.serve((_req) => new Response("v1"));\nconst broken = ;\n`;

function start(dir: string, workers: number, port: number) {
  const child = new Deno.Command(Deno.execPath(), {
    args: hotreloadArgs(workers, port),
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      lines.push(...text.split("\n").filter((line) => line !== ""));
    }
  };
  const done = Promise.all([pump(child.stdout), pump(child.stderr)]);
  return { child, lines, done };
}

async function answer(port: number): Promise<string | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`);
    return await response.text();
  } catch {
    return undefined;
  }
}

/** Save a fix after `brokenMs` of failing; ms until the fixed code answers. */
async function fixToAnswer(brokenMs: number): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-" });
  await Deno.writeTextFile(`${dir}/main.ts`, BROKEN);
  const port = freePort();
  const run = start(dir, 2, port);
  try {
    await until(() => run.lines.some((l) => /waiting for a change/.test(l)), "the failed start");
    await new Promise((resolve) => setTimeout(resolve, brokenMs));
    await Deno.writeTextFile(`${dir}/main.ts`, GOOD);
    const saved = performance.now();
    await until(async () => (await answer(port)) === "fixed", "the fix to answer");
    return performance.now() - saved;
  } finally {
    run.child.kill("SIGTERM");
    await run.child.status;
    await run.done;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Lines a crash loop of 2 workers writes in `seconds`, scaled to a minute. */
async function crashLoopLinesPerMinute(seconds: number): Promise<number> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload-bench-" });
  await Deno.writeTextFile(`${dir}/main.ts`, `console.log("booting");\nthrow new Error("boom");\n`);
  const run = start(dir, 2, freePort());
  try {
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return Math.round(run.lines.length * 60 / seconds);
  } finally {
    run.child.kill("SIGTERM");
    await run.child.status;
    await run.done;
    await Deno.remove(dir, { recursive: true });
  }
}

export async function benchFix(): Promise<string> {
  const times: number[] = [];
  for (const brokenMs of [3000, 6000, 13000, 3000, 6000]) times.push(await fixToAnswer(brokenMs));
  const perMinute = await crashLoopLinesPerMinute(60);
  const sorted = [...times].sort((a, b) => a - b);
  return [
    "### Broken code",
    "",
    machine(),
    "",
    `Save of a fix → first good answer, 2 workers broken for 3 to 13 s (5 saves): median ${
      Math.round(median(times))
    } ms, min ${Math.round(sorted[0])} ms, max ${Math.round(sorted.at(-1)!)} ms.`,
    "",
    `A crash loop (2 workers, an entry that throws at start, watching) wrote ${perMinute} log ` +
    `lines in its first minute.`,
  ].join("\n");
}

if (import.meta.main) console.log(await benchFix());
