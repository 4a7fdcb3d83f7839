/** The README stays true to the CLI: every option and command in --help is documented. */
import assert from "node:assert/strict";
import { ROOT, runCli } from "./helpers.ts";

const readme = await Deno.readTextFile(`${ROOT}/README.md`);

function flagsIn(help: string): string[] {
  return [...new Set([...help.matchAll(/(?<![\w-])--[a-z][a-z-]+/g)].map((m) => m[0]))];
}

Deno.test("every option of every command's --help appears in the README", async () => {
  const main = await runCli(["--help"], ROOT);
  assert.equal(main.code, 0);
  const commands = [...main.stdout.matchAll(/^ {2}hotreload (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(commands, [
    "run",
    "start",
    "stop",
    "reload",
    "restart",
    "send",
    "status",
    "scale",
    "upgrade",
    "logs",
    "list",
  ]);
  for (const command of commands) {
    assert.ok(readme.includes(`hotreload ${command}`), `README documents "hotreload ${command}"`);
    const help = await runCli([command, "--help"], ROOT);
    assert.equal(help.code, 0, `${command} --help`);
    for (const flag of flagsIn(help.stdout)) {
      assert.ok(
        readme.includes(flag),
        `README documents ${flag} (from "hotreload ${command} --help")`,
      );
    }
  }
});

Deno.test("help lines fit 100 columns", async () => {
  for (const args of [["--help"], ["run", "--help"], ["status", "--help"]]) {
    const help = await runCli(args, ROOT);
    assert.equal(help.code, 0, help.stderr);
    assert.ok(help.stdout.split("\n").length > 3, `${args.join(" ")} prints a help text`);
    for (const line of help.stdout.split("\n")) {
      assert.ok(line.length <= 100, `"${line}" is ${line.length} columns`);
    }
  }
});

Deno.test("the README's table of run options is the settings table's", async () => {
  const { optionRows } = await import("../src/config/settings.ts");
  // Cells as text, whatever padding `deno fmt` gave the table.
  const cells = (row: string) => row.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim());
  const start = readme.indexOf("| option ");
  const table = readme.slice(start, readme.indexOf("\n\n", start)).split("\n").slice(2);
  assert.deepEqual(table.map(cells), optionRows().map(cells));
});
