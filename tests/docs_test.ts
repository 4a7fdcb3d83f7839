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
    "monit",
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

Deno.test("the README's custom-process example states the defaults the code uses", async () => {
  const { processDefaults } = await import("../src/config/mod.ts");
  const defaults: Record<string, unknown> = processDefaults();
  const start = readme.indexOf('"processes": [');
  const example = readme.slice(start, readme.indexOf("]\n}", start));
  for (const [key, value] of Object.entries(defaults)) {
    const line = example.split("\n").find((text) => text.trim().startsWith(`"${key}":`));
    assert.ok(line, `the example sets "${key}"`);
    const said = line.match(/\(default ([^)]*)\)/)?.[1] ?? line.match(/("[^"]+") \(default\)/)?.[1];
    assert.equal(said, JSON.stringify(value), `"${key}"'s default in the README`);
  }
});
