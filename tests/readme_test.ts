/**
 * The README's shell blocks run as written, on a fresh clone with only Deno.
 *
 * Every ```sh block is split into commands (a `\` at a line's end continues
 * it), and each runs with `sh -c` in the directory the block assumes: the
 * clone, or a new project holding the files the README shows beside it. The
 * blocks are one terminal session: an `export` carries on to every later
 * command, so the quick start's `deno task install` (into a temporary
 * DENO_INSTALL_ROOT) and its PATH line give every later block its
 * `hotreload`. A `hotreload run` keeps running, as in a terminal: it must
 * come up (and answer what the README says it answers), and it is stopped by
 * the block's own `hotreload stop` or, at the block's end, with SIGTERM (as
 * Ctrl-C would); it must exit 0 and leave nothing running. The ports the
 * README names (`--port 8000`, `localhost:8000`) become free ones. What a
 * block assumes (a running instance to take over, another Deno) and what
 * cannot run here are in PLANS, each with why; a block without a plan fails.
 */
import assert from "node:assert/strict";
import { cloneInto } from "./clone.ts";
import { freePort, Hotreload, httpGet, killTagged, ROOT, taggedPids, waitFor } from "./helpers.ts";
import { GREETER_PROTO } from "./protocols.ts";

/** A ```sh block: where it starts, its text, and the code block just above it. */
interface Block {
  line: number;
  text: string;
  above?: string;
}

type Step = { comment: string } | { command: string };

/** The terminal session the blocks share. */
interface Session {
  clone: string;
  env: Record<string, string>;
  /** The `export` lines run so far, in order. */
  exports: string[];
}

/** One block's run: its directory, ports, and the `hotreload run`s it started. */
interface Ctx {
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

interface Plan {
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

const README = await Deno.readTextFile(`${ROOT}/README.md`);

/** How each block is run, by its first command. */
const PLANS: Record<string, Plan> = {
  "npm install -g deno@": {
    notHere: {
      "npm install -g deno@":
        "it replaces the machine's Deno; these tests run on the Deno it installs (.ci/run runs " +
        "this command where deno is missing)",
    },
  },
  "deno task install": {
    notHere: {
      "deno task test": "it is this suite: tests/fresh_clone_test.ts runs it on a fresh clone",
    },
    up: /4 worker\(s\) ready/,
    answers: "hello from worker",
  },
  "hotreload run examples/hello/main.ts -N --workers 4 --port 8000 ": {
    up: /4 worker\(s\) ready/,
    answers: "hello from worker",
    after: {
      "curl localhost:": (_ctx, stdout) => {
        assert.match(stdout, /^hello from worker \d \(pid \d+\)\n$/);
        return Promise.resolve();
      },
      "edit examples/hello/main.ts and save": editInTheTour,
      "hotreload send queue": async (ctx) => {
        await ctx.running[0].waitForOutput('processed {"job":7}');
      },
      "hotreload status": (_ctx, stdout) => {
        assert.match(stdout, /^process +queue#0 +\d+ +ready/m);
        assert.equal(stdout.match(/^worker +\d+ +\d+ +ready/gm)?.length, 4, stdout);
        return Promise.resolve();
      },
      "hotreload scale 2": async (ctx) => {
        await waitFor(
          async () => (await status(ctx)).children.filter(serving).length === 2,
          "2 workers after scale 2",
        );
      },
    },
  },
  "deno add npm:express": {
    project: (block) => ({ "main.js": codeAbove(block, "// main.js\n") }),
    up: /4 worker\(s\) ready/,
    answers: "Hello World!",
  },
  "deno add npm:@grpc/grpc-js npm:@grpc/proto-loader": {
    // "with greeter.proto from grpc-js's examples"
    project: (block) => ({
      "main.js": codeAbove(block, "// main.js (with greeter.proto"),
      "greeter.proto": GREETER_PROTO,
    }),
    up: /4 worker\(s\) ready/,
  },
  "HOTRELOAD_DENO=/opt/deno-2.9.6/deno hotreload run main.ts": {
    project: () => ({ "main.ts": `Deno.serve(() => new Response("hello from " + Deno.pid));\n` }),
    // The newer Deno the comment speaks of: here, the one this test runs on.
    paths: { "/opt/deno-2.9.6/deno": Deno.execPath() },
    // "the instance "main" runs with 2 workers"
    setup: async (ctx) => {
      await ctx.start(
        "hotreload run main.ts -N --workers 2 --port 8000 --no-watch",
        /2 worker\(s\) ready/,
      );
    },
    up: /took over "main" from pid \d+/,
    answers: "hello from",
    after: {
      "HOTRELOAD_DENO=": async (ctx) => {
        const [old, taker] = ctx.running;
        assert.equal((await old.status).code, 0, `the old instance stopped\n${old.output.text()}`);
        assert.ok(taker.output.has(/3 worker\(s\) ready/), taker.output.text());
      },
    },
  },
};

/** The tour's edit: the workers reload, the queue consumer keeps running; a save of mod.ts restarts it. */
async function editInTheTour(ctx: Ctx): Promise<void> {
  // What a change reloads is decided by the module graphs: a save before they are first
  // computed reloads everything (rule no-graphs). A reader is slower than that.
  await waitFor(
    async () => (await status(ctx)).supervisor.graphs?.current,
    "module graphs",
    30_000,
  );
  const consumer = async () =>
    (await status(ctx)).children.find((c) => c.role === "process" && c.state === "ready")?.pid;
  const before = await consumer();
  assert.ok(before, "the queue consumer runs");
  const main = `${ctx.dir}/examples/hello/main.ts`;
  const code = await Deno.readTextFile(main);
  assert.ok(code.includes("hello from worker"), "examples/hello/main.ts says hello");
  await Deno.writeTextFile(main, code.replace("hello from worker", "hi from worker"));
  const port = ctx.port(8000);
  await waitFor(async () => (await httpGet(port)).body.startsWith("hi from worker"), "the edit");
  await waitFor(async () => !(await status(ctx)).supervisor.reloading, "the reload's end");
  assert.equal(await consumer(), before, "the queue consumer kept running");
  await Deno.writeTextFile(
    `${ctx.dir}/mod.ts`,
    `${await Deno.readTextFile(`${ctx.dir}/mod.ts`)}// saved by tests/readme_test.ts\n`,
  );
  await waitFor(async () => {
    const pid = await consumer();
    return pid !== undefined && pid !== before;
  }, "the queue consumer restarted after a save of mod.ts");
}

/** A worker that serves (or will: not draining, not a spare). */
function serving(row: { role: string; state: string }): boolean {
  return row.role === "worker" && row.state !== "draining" && row.state !== "held";
}

/** `hotreload status --json` in the block's directory. */
async function status(ctx: Ctx): Promise<{
  supervisor: { reloading: boolean; graphs?: { current: boolean } | null };
  children: Array<{ role: string; state: string; pid: number | null }>;
}> {
  return JSON.parse(await ctx.sh("hotreload status --json"));
}

/** The code block just above `block`, which must start with `start`. */
function codeAbove(block: Block, start: string): string {
  assert.ok(
    block.above?.startsWith(start),
    `README line ${block.line}: the block above starts with "${start}"`,
  );
  return block.above!;
}

function shellBlocks(readme: string): Block[] {
  const blocks: Block[] = [];
  let above: string | undefined;
  for (const match of readme.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)) {
    const line = readme.slice(0, match.index).split("\n").length;
    if (match[1] === "sh") blocks.push({ line, text: match[2], above });
    above = match[2];
  }
  return blocks;
}

function stepsOf(text: string): Step[] {
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

function matching<T>(table: Record<string, T> | undefined, text: string): T | undefined {
  const key = Object.keys(table ?? {}).find((start) => text.startsWith(start));
  return key === undefined ? undefined : table![key];
}

async function runBlock(session: Session, block: Block, plan: Plan): Promise<void> {
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

Deno.test("every shell block of the README runs as written on a fresh clone", async (t) => {
  const clone = await Deno.makeTempDir({ prefix: "hotreload-readme-clone-" });
  const root = await Deno.makeTempDir({ prefix: "hotreload-readme-root-" });
  const denoBin = Deno.execPath().replace(/\/[^/]+$/, "");
  const session: Session = {
    clone,
    // Only Deno on PATH before the quick start installs hotreload; the install goes to `root`.
    env: {
      NO_COLOR: "1",
      DENO_INSTALL_ROOT: root,
      PATH: `${denoBin}:${Deno.env.get("PATH")}`,
    },
    exports: [],
  };
  try {
    await cloneInto(clone);
    const blocks = shellBlocks(README);
    assert.ok(blocks.length >= 6, `the README has its shell blocks (${blocks.length})`);
    for (const block of blocks) {
      const first = stepsOf(block.text).find((step) => "command" in step) as { command: string };
      const plan = matching(PLANS, first.command);
      assert.ok(
        plan,
        `README line ${block.line}: no plan for the block starting \`${first.command}\` in ` +
          `tests/readme_test.ts: say there what it needs (a project, a running instance)`,
      );
      await t.step(
        `README line ${block.line}: ${first.command}`,
        () => runBlock(session, block, plan),
      );
    }
  } finally {
    await Deno.remove(clone, { recursive: true });
    await Deno.remove(root, { recursive: true });
  }
});
