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
import { httpGet, ROOT, waitFor } from "./helpers.ts";
import { GREETER_PROTO } from "./protocols.ts";
import {
  type Block,
  type Ctx,
  matching,
  type Plan,
  runBlock,
  type Session,
  shellBlocks,
  stepsOf,
} from "./shell_blocks.ts";

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
  "hotreload start examples/hello/main.ts": {
    after: {
      "hotreload start": (_ctx, stdout) => {
        assert.match(
          stdout,
          /^started "main" in the background: supervisor pid \d+, port \d+, 2 worker\(s\) ready\n$/,
        );
        return Promise.resolve();
      },
      "curl localhost:": (_ctx, stdout) => {
        // The tour's edit (hello → hi) is still there: one terminal session, one clone.
        assert.match(stdout, /^h(?:ello|i) from worker \d \(pid \d+\)\n$/);
        return Promise.resolve();
      },
      "hotreload logs --lines 5": (_ctx, stdout) => {
        const lines = stdout.trimEnd().split("\n");
        assert.equal(lines.length, 5, stdout);
        assert.ok(lines.every((line) => /^\[(hotreload|worker \d \d+)\] /.test(line)), stdout);
        return Promise.resolve();
      },
      "hotreload list --all": (ctx, stdout) => {
        assert.match(stdout, /^NAME +PID +PORT +WORKERS +UPTIME +DIR$/m);
        const row = stdout.split("\n").find((line) => line.endsWith(` ${ctx.dir}`));
        assert.match(row ?? "", /^main +\d+ +\d+ +3 /, stdout);
        return Promise.resolve();
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
