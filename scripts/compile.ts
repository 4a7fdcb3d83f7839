/**
 * `deno task compile`: builds dist/hotreload, a single binary with the
 * children's runtime files inside. `deno compile` needs the `denort` runtime,
 * which it downloads unless DENORT_BIN points at one; without either, this
 * fails with one line saying so.
 */
const ROOT = new URL("..", import.meta.url).pathname;
const OUTPUT = `${ROOT}dist/hotreload`;

const result = await new Deno.Command(Deno.execPath(), {
  args: [
    "compile",
    "--allow-all", // the supervisor reads /proc, signals process groups, runs deno
    "--include",
    `${ROOT}src/runtime`,
    "--output",
    OUTPUT,
    `${ROOT}cli.ts`,
  ],
  stdout: "inherit",
  stderr: "piped",
}).output();

if (!result.success) {
  const stderr = new TextDecoder().decode(result.stderr);
  if (/denort|dl\.deno\.land|Setting up base binary/i.test(stderr)) {
    console.error(
      "compile: deno compile needs the denort runtime, which could not be downloaded " +
        `(no network?) and DENORT_BIN is ${
          Deno.env.get("DENORT_BIN") ? "not a usable denort" : "not set"
        }; set DENORT_BIN to a denort ${Deno.version.deno} binary`,
    );
  } else {
    console.error(stderr.trim());
  }
  Deno.exit(1);
}
console.error(`compile: wrote ${OUTPUT}`);
