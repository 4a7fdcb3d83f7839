/**
 * How a README's shell block runs, as a reader would run it: split into
 * commands (a `\` at a line's end continues it), each with `sh -c` in the
 * directory the block assumes, in one terminal session whose `export`s carry
 * on; a `hotreload run` keeps running until the block stops it, or until its
 * end (SIGTERM, as Ctrl-C). What a block needs is its Plan
 * (tests/readme_test.ts).
 */
import assert from "node:assert/strict";
import { freePort, Hotreload, httpGet, killTagged, taggedPids, waitFor } from "./helpers.ts";

/** A ```sh block: where it starts, its text, and the code block just above it. */
export interface Block {
  line: number;
  text: string;
  above?: string;
}

export type Step = { comment: string } | { command: string };

/** The terminal session the blocks share. */
export interface Session {
  clone: string;
  env: Record<string, string>;
  /** The `export` lines run so far, in order. */
  exports: string[];
}

/** One block's run: its directory, ports, and the `hotreload run`s it started. */
export interface Ctx {
  session: Session;
  dir: string;
  tag: string;
  running: Hotreload[];
  /** The free port that stands for `port` of the README. */
  port(port: number): number;
  /** Starts a long-running command as the block would, and waits until `up` says it is. */
  start(command: string, up: RegExp): Promise<Hotreload>;
  /** Runs a command to its end; it must exit 0. */
  sh(command: string): Promise<string>;
}

export interface Plan {
  /** The files of a new project the block runs in; without it, the block runs in the clone. */
  project?: (block: Block) => Record<string, string>;
  /** Commands (by their start) that are not run here, each with why. */
  notHere?: Record<string, string>;
  /** Paths the README uses as examples, and what stands for them here. */
  paths?: Record<string, string>;
  /** The line a `hotreload run` of the block prints once it is up. */
  up?: RegExp;
  /** What GET / on the block's port answers once it is up (its start). */
  answers?: string;
  /** What the block assumes is there before its first command. */
  setup?: (ctx: Ctx) => Promise<void>;
  /** Checks after a command (a `hotreload run`: once it is up), or at a comment, by their start. */
  after?: Record<string, (ctx: Ctx, stdout: string) => Promise<void>>;
}

export function shellBlocks(readme: string): Block[] {
  const blocks: Block[] = [];
  let above: string | undefined;
  for (const match of readme.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    const line = readme.slice(0, match.index).split("\n").length;
    if (match[1] === "sh") blocks.push({ line, text: match[2], above });
    above = match[2];
  }
  return blocks;
}

export function stepsOf(text: string): Step[] {
  const steps: Step[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = pending + raw.trim();
    if (line.endsWith("\\")) {
      pending = line.slice(0, -1);
      continue;
    }
    pending = "";
    if (line === "") continue;
    steps.push(line.startsWith("#") ? { comment: line.slice(1).trim() } : { command: line });
  }
  return steps;
}

/** `hotreload run`, maybe after variable assignments: the commands that keep running. */
function keepsRunning(command: string): boolean {
  return /^(?:\w+=\S*\s+)*hotreload run /.test(command);
}

/** The command as the last thing its shell does, so that its pid is hotreload's. */
function execForm(command: string): string {
  const [, assignments, rest] = command.match(/^((?:\w+=\S*\s+)*)([\s\S]*)$/)!;
  return assignments ? `exec env ${assignments}${rest}` : `exec ${rest}`;
}

export function matching<T>(table: Record<string, T> | undefined, text: string): T | undefined {
  const key = Object.keys(table ?? {}).find((start) => text.startsWith(start));
  return key === undefined ? undefined : table![key];
}

export async function runBlock(session: Session, block: Block, plan: Plan): Promise<void> {
  const steps = stepsOf(block.text);
  const dir = plan.project
    ? await Deno.makeTempDir({ prefix: "hotreload-readme-" })
    : session.clone;
  for (const [name, content] of Object.entries(plan.project?.(block) ?? {})) {
    await Deno.writeTextFile(`${dir}/${name}`, content);
  }
  const ports = new Map<number, number>();
  const port = (readmePort: number) => {
    if (!ports.has(readmePort)) ports.set(readmePort, freePort());
    return ports.get(readmePort)!;
  };
  const local = (command: string) => {
    let text = command.replace(
      /(--port |localhost:)(\d+)/g,
      (_, before, number) => `${before}${port(Number(number))}`,
    );
    for (const [path, here] of Object.entries(plan.paths ?? {})) text = text.replaceAll(path, here);
    return text;
  };
  const script = (command: string) => [...session.exports, command].join("\n");
  const ctx: Ctx = {
    session,
    dir,
    tag: crypto.randomUUID(),
    running: [],
    port,
    async start(command, up) {
      const run = new Hotreload([], dir, session.env, [], [
        "sh",
        "-c",
        script(execForm(local(command))),
      ]);
      ctx.running.push(run);
      await run.waitForOutput(up, 60_000);
      return run;
    },
    async sh(command) {
      const out = await new Deno.Command("sh", {
        args: ["-c", script(local(command))],
        cwd: dir,
        env: { ...session.env, HOTRELOAD_TEST_TAG: ctx.tag },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(300_000),
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(
        out.code,
        0,
        `README line ${block.line}: \`${command}\` exited ${out.code}\n${stdout}${stderr}` +
          ctx.running.map((run) => `\n--- hotreload ---\n${run.output.text()}`).join(""),
      );
      return stdout;
    },
  };
  try {
    await plan.setup?.(ctx);
    for (const step of steps) {
      if ("comment" in step) {
        await matching(plan.after, step.comment)?.(ctx, "");
        continue;
      }
      const { command } = step;
      const why = matching(plan.notHere, command);
      if (why) {
        console.log(`README line ${block.line}: \`${command}\` is not run here: ${why}`);
        continue;
      }
      if (keepsRunning(command)) {
        assert.ok(plan.up, `README line ${block.line}: the plan says when \`${command}\` is up`);
        const run = await ctx.start(command, plan.up);
        if (plan.answers !== undefined) {
          const answers = plan.answers;
          const at = port(Number(command.match(/--port (\d+)/)?.[1]));
          await waitFor(
            async () => (await httpGet(at)).body.startsWith(answers),
            () => `GET / on ${at} answering "${answers}"\n${run.output.text()}`,
            30_000,
          );
        }
        await matching(plan.after, command)?.(ctx, "");
        continue;
      }
      if (command.startsWith("export ")) session.exports.push(command);
      const stdout = await ctx.sh(command);
      await matching(plan.after, command)?.(ctx, stdout);
      if (/^hotreload stop\b/.test(command)) {
        for (const run of ctx.running) {
          assert.equal((await run.status).code, 0, run.output.text());
        }
      }
    }
    for (const run of ctx.running) {
      await run.cleanup();
      assert.equal((await run.status).code, 0, `stopped with SIGTERM\n${run.output.text()}`);
    }
    assert.deepEqual(taggedPids(ctx.tag), [], "the block's commands left nothing running");
  } finally {
    for (const run of ctx.running) await run.cleanup().catch(() => {});
    killTagged(ctx.tag);
    if (plan.project) await Deno.remove(dir, { recursive: true });
  }
}
