/**
 * `hotreload monit`: the dashboard's live table in the terminal. Once a
 * second it asks the instance for its status (the control socket, as
 * `status` does), keeps the history in a DashboardState (requests/s, the
 * sparklines) and redraws the screen in place (src/dashboard/monit.ts), on
 * the terminal's alternate screen. `q` or Ctrl-C leaves, and the terminal is
 * restored (raw mode off, cursor shown, the screen as it was); so do SIGINT,
 * SIGTERM and SIGHUP. Without a terminal it refuses, exit 1.
 */
import { askOverSocket } from "../../control/client.ts";
import { HotreloadError } from "../../errors.ts";
import { DashboardState } from "../../dashboard/state.ts";
import { drawMonit } from "../../dashboard/monit.ts";
import { parseControlArgs } from "../control_args.ts";
import { MONIT_HELP } from "../help.ts";

const INTERVAL_MS = 1_000;
const encoder = new TextEncoder();
/** Alternate screen, cursor hidden; and back. */
const ENTER = "\x1b[?1049h\x1b[?25l";
const LEAVE = "\x1b[?25h\x1b[?1049l";

/** Runs `hotreload monit` until `q`, Ctrl-C or a signal; exit code 0 (1 without a terminal). */
export async function monitCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("monit", MONIT_HELP, argv);
  if (!args) return 0;
  if (!Deno.stdin.isTerminal() || !Deno.stdout.isTerminal()) {
    throw new HotreloadError(
      `monit draws a live table and needs a terminal (stdin and stdout); ` +
        `for a script use "hotreload status --json"`,
    );
  }
  const target = { name: args.values.name, dir: args.values.dir };
  const state = new DashboardState();
  // The first status before the screen changes: a missing instance fails as `status` does.
  state.observe((await askOverSocket(target, { cmd: "status" })).status!, Date.now());

  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => stop = resolve);
  const signals: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];
  for (const signal of signals) Deno.addSignalListener(signal, stop);
  Deno.stdin.setRaw(true);
  write(ENTER);
  let failure: string | undefined;
  try {
    readKeys(stop);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    stopped.then(() => {
      done = true;
      clearTimeout(timer);
    });
    while (!done) {
      const now = Date.now();
      draw(drawMonit(state.update(now), Deno.consoleSize().columns));
      await Promise.race([
        stopped,
        new Promise((resolve) => timer = setTimeout(resolve, INTERVAL_MS)),
      ]);
      if (done) break;
      try {
        state.observe((await askOverSocket(target, { cmd: "status" })).status!, Date.now());
      } catch (error) {
        failure = `monit: the instance stopped answering: ${(error as Error).message}`;
        break;
      }
    }
  } finally {
    write(LEAVE);
    Deno.stdin.setRaw(false);
    for (const signal of signals) Deno.removeSignalListener(signal, stop);
  }
  if (failure) throw new HotreloadError(failure);
  return 0;
}

/** Calls `stop` on `q`, `Q`, Ctrl-C or Ctrl-D, or when stdin ends. */
async function readKeys(stop: () => void): Promise<void> {
  const buffer = new Uint8Array(64);
  while (true) {
    const n = await Deno.stdin.read(buffer).catch(() => null);
    if (n === null) return stop();
    for (const byte of buffer.subarray(0, n)) {
      if (byte === 0x71 || byte === 0x51 || byte === 0x03 || byte === 0x04) return stop();
    }
  }
}

/** The screen from its top left, each line cleared to its end, the rest below cleared. */
function draw(lines: string[]): void {
  write(`\x1b[H${lines.map((line) => `${line}\x1b[K`).join("\r\n")}\x1b[J`);
}

function write(text: string): void {
  const bytes = encoder.encode(text);
  for (let written = 0; written < bytes.length;) {
    written += Deno.stdout.writeSync(bytes.subarray(written));
  }
}
