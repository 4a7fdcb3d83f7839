/**
 * What some tests need from outside the repository, set up by the tests
 * themselves so that the README's `deno task test` passes on a fresh clone:
 * the framework fixtures' npm packages (from the npm registry, exactly as
 * tests/fixtures/npm's committed lock says) and promtool, Prometheus's own
 * checker of the text format (Debian's `prometheus` package). Each is set up
 * once per test process; what cannot be set up fails the test that needs it
 * with one line saying what is missing and how to get it.
 */

const FIXTURE = new URL("./fixtures/npm/", import.meta.url);

let npmReady: Promise<void> | undefined;
let promtoolReady: Promise<string> | undefined;

/** Caches the fixtures' npm packages in DENO_DIR (`deno install --frozen`), once. */
export function npmFixtures(): Promise<void> {
  return npmReady ??= (async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["install", "--frozen", "--entrypoint", "all.ts"],
      cwd: FIXTURE,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) {
      const text = new TextDecoder().decode(out.stderr).trim().split("\n");
      throw new Error(
        `the framework fixtures' npm packages could not be installed (deno install --frozen ` +
          `in tests/fixtures/npm): ${text.find((l) => l.startsWith("error")) ?? text.at(-1)}; ` +
          `the npm registry must be reachable`,
      );
    }
  })();
}

/** The path of promtool: on PATH already, or installed from Debian's `prometheus` as root. */
export function promtool(): Promise<string> {
  return promtoolReady ??= (async () => {
    const found = await which("promtool");
    if (found) return found;
    if (Deno.uid() !== 0 || !(await which("apt-get"))) {
      throw new Error(
        "promtool is missing: install Debian's prometheus package " +
          "(apt-get install --no-install-recommends prometheus) or put promtool on PATH",
      );
    }
    // A stale package list is the usual reason an install finds nothing: update and retry once.
    if (!(await aptInstall("prometheus"))) {
      await run("apt-get", ["update"]);
      await aptInstall("prometheus");
    }
    const installed = await which("promtool");
    if (!installed) {
      throw new Error(
        "promtool is missing and apt-get install prometheus failed; install it by hand",
      );
    }
    return installed;
  })();
}

async function aptInstall(pkg: string): Promise<boolean> {
  return await run("apt-get", ["install", "-y", "--no-install-recommends", pkg]);
}

async function run(command: string, args: string[]): Promise<boolean> {
  const out = await new Deno.Command(command, {
    args,
    env: { DEBIAN_FRONTEND: "noninteractive" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return out.success;
}

async function which(command: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const path = `${dir}/${command}`;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && (info.mode ?? 0) & 0o111) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}
