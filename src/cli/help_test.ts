/**
 * Help is true: every flag a command accepts is in that command's help and
 * on its line of the main help, and what help once said wrongly stays
 * corrected.
 */
import assert from "node:assert/strict";
import { CONTROL_COMMANDS, type ControlCommandName, parseControlArgs } from "./control_args.ts";
import {
  LIST_HELP,
  LOGS_HELP,
  MAIN_HELP,
  MONIT_HELP,
  RELOAD_HELP,
  RESTART_HELP,
  runHelp,
  SCALE_HELP,
  SEND_HELP,
  STATUS_HELP,
  STOP_HELP,
  UPGRADE_HELP,
} from "./help.ts";
import { SETTINGS } from "../config/settings.ts";
import { ROW_STATES } from "../control/protocol.ts";
import { UsageError } from "../errors.ts";

const HELP: Record<ControlCommandName, string> = {
  stop: STOP_HELP,
  reload: RELOAD_HELP,
  restart: RESTART_HELP,
  send: SEND_HELP,
  status: STATUS_HELP,
  monit: MONIT_HELP,
  scale: SCALE_HELP,
  upgrade: UPGRADE_HELP,
  list: LIST_HELP,
  logs: LOGS_HELP,
};

/** The main help's line(s) for a command: its usage, and its summary when on the next line. */
function mainLine(command: string): string {
  const lines = MAIN_HELP.split("\n");
  const at = lines.findIndex((line) => line.startsWith(`  hotreload ${command} `));
  assert.notEqual(at, -1, `the main help has a line for ${command}`);
  return `${lines[at]}\n${lines[at + 1]}`;
}

const flagPattern = (flag: string) => new RegExp(`(?<![\\w-])--${flag}(?![\\w-])`);

Deno.test("help: every flag a control command accepts is in its help and its main help line", () => {
  for (const [command, { flags }] of Object.entries(CONTROL_COMMANDS)) {
    const help = HELP[command as ControlCommandName];
    for (const { flag, short } of flags) {
      assert.match(help, flagPattern(flag), `"${command} --help" names --${flag}`);
      if (short) assert.match(help, new RegExp(`-${short}, --${flag}`));
      if (flag !== "help") {
        assert.match(mainLine(command), flagPattern(flag), `"--help" names ${command} --${flag}`);
      }
    }
  }
});

Deno.test("help: a control command accepts exactly its table's flags", () => {
  const values: Record<string, string> = { timeout: "1000", name: "app", dir: ".", lines: "5" };
  for (const [command, { flags, positionals }] of Object.entries(CONTROL_COMMANDS)) {
    const args = positionals.map(() => "x");
    for (const { flag } of flags.filter(({ flag }) => flag !== "help")) {
      const argv = [...args, `--${flag}`, ...(values[flag] ? [values[flag]] : [])];
      const parsed = parseControlArgs(command as ControlCommandName, "", argv);
      assert.ok(parsed, `${command} accepts --${flag}`);
    }
    assert.throws(
      () => parseControlArgs(command as ControlCommandName, "", [...args, "--nonsense"]),
      UsageError,
    );
  }
  assert.throws(
    () => parseControlArgs("stop", "", ["--timeout", "soon"]),
    /--timeout must be a whole number of milliseconds \(got "soon"\)/,
  );
});

Deno.test("help: every run setting is in run --help", () => {
  const help = runHelp();
  for (const { flag, short } of SETTINGS) {
    assert.match(help, flagPattern(flag), `run --help names --${flag}`);
    if (short) assert.match(help, new RegExp(`-${short}, --${flag}`));
  }
});

Deno.test("help: every line fits 100 columns", () => {
  for (const help of [MAIN_HELP, runHelp(), ...Object.values(HELP)]) {
    for (const line of help.split("\n")) assert.ok(line.length <= 100, `"${line}"`);
  }
});

Deno.test("help: the statements once false are corrected", () => {
  const run = runHelp().replaceAll(/\s+/g, " ");
  // --switch all starts every new worker together, not after a canary.
  assert.doesNotMatch(run, /once the canary is ready/);
  assert.match(run, /all: a reload starts every new worker together/);
  // --settle: without steering, a one-step switch has drained the old workers already.
  assert.doesNotMatch(run, /the reload is aborted and the old workers keep serving \(/);
  assert.match(run, /unless a one-step switch without steering had drained them already/);
  // reload: under --switch all, an old worker may leave before its own replacement is ready.
  const reload = RELOAD_HELP.replaceAll(/\s+/g, " ");
  assert.doesNotMatch(reload, /replacement ready before its predecessor drains/);
  assert.match(reload, /--switch all: every old worker leaves when the first new one is ready/);
  // status: every state a row can be in.
  for (const state of ROW_STATES) assert.match(STATUS_HELP, new RegExp(`\\b${state}\\b`));
});
