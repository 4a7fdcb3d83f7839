/**
 * Starts `hotreload run main.ts -N <args>` on a small project and reports how
 * it ended, as JSON on the last line: for start-up errors that depend on the
 * network namespace (tests/netns.ts). Anything that starts is stopped after 20 s.
 */
import { CLI, makeProject } from "../helpers.ts";

const dir = await makeProject({ "main.ts": "Deno.serve(() => new Response('ok'));\n" });
try {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "run", "main.ts", "-N", "--no-watch", ...Deno.args],
    cwd: dir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    signal: AbortSignal.timeout(20_000),
  }).output();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  console.log(
    JSON.stringify({ code: output.code, stdout: text(output.stdout), stderr: text(output.stderr) }),
  );
} finally {
  await Deno.remove(dir, { recursive: true });
}
