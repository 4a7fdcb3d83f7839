/**
 * What some tests need from outside the repository, set up by the tests
 * themselves so that the README's `deno task test` passes on a fresh clone:
 * the framework fixtures' npm packages (from the npm registry, exactly as
 * tests/fixtures/npm's committed lock says) and promtool, Prometheus's own
 * checker of the text format (Debian's `prometheus` package), and a Deno older
 * than hotreload supports (npm's build of Deno 2.5.6, cached in DENO_DIR). Each is set up
 * once per test process; what cannot be set up fails the test that needs it
 * with one line saying what is missing and how to get it.
 */

const FIXTURE = new URL("./fixtures/npm/", import.meta.url);

let npmReady: Promise<void> | undefined;
let promtoolReady: Promise<string> | undefined;
let oldDenoReady: Promise<string> | undefined;

/** The old Deno the version check is tested against: older than 2.7, newer than 2.0. */
export const OLD_DENO_VERSION = "2.5.6";

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

/**
 * The path of a real Deno 2.5.6, installed once from npm (`@deno/<platform>`,
 * the package `npm install deno` takes the binary from) with Deno's own npm
 * client, so no Node is needed. It is kept in DENO_DIR/hotreload-tests/ (a
 * fresh DENO_DIR gets it again): moved there whole once it answers
 * --version, so an interrupted install is never taken for one.
 */
export function oldDeno(): Promise<string> {
  return oldDenoReady ??= (async () => {
    const arch = { x86_64: "x64", aarch64: "arm64" }[Deno.build.arch];
    if (Deno.build.os !== "linux" || !arch) {
      throw new Error(`no npm build of Deno ${OLD_DENO_VERSION} is known for ${Deno.build.target}`);
    }
    const pkg = `@deno/linux-${arch}-glibc`;
    const parent = `${await denoDir()}/hotreload-tests`;
    const home = `${parent}/deno-${OLD_DENO_VERSION}`;
    const binary = (root: string) => `${root}/node_modules/${pkg}/deno`;
    // Its real path (node_modules/ links to node_modules/.deno/), which is what it calls itself.
    if (await isDeno(binary(home))) return await Deno.realPath(binary(home));
    await Deno.mkdir(parent, { recursive: true });
    const partial = await Deno.makeTempDir({ dir: parent, prefix: "partial-" });
    try {
      await Deno.writeTextFile(
        `${partial}/package.json`,
        JSON.stringify({ dependencies: { [pkg]: OLD_DENO_VERSION } }),
      );
      const out = await new Deno.Command(Deno.execPath(), {
        // Explicit: under DENO_DIR, a package.json alone gets no node_modules/.
        args: ["install", "--node-modules-dir=auto"],
        cwd: partial,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(300_000),
      }).output();
      if (!out.success || !(await isDeno(binary(partial)))) {
        const text = new TextDecoder().decode(out.stderr).trim().split("\n");
        throw new Error(
          `Deno ${OLD_DENO_VERSION} could not be installed from npm (deno install ` +
            `${pkg}@${OLD_DENO_VERSION} in ${partial}): ` +
            `${text.find((l) => l.startsWith("error")) ?? text.at(-1) ?? "no binary"}; ` +
            `the npm registry must be reachable`,
        );
      }
      await Deno.remove(home, { recursive: true }).catch(() => {});
      await Deno.rename(partial, home);
      return await Deno.realPath(binary(home));
    } finally {
      await Deno.remove(partial, { recursive: true }).catch(() => {});
    }
  })();
}

/** True when `path` runs and says it is Deno OLD_DENO_VERSION. */
async function isDeno(path: string): Promise<boolean> {
  try {
    const out = await new Deno.Command(path, { args: ["--version"], stdout: "piped" }).output();
    return new TextDecoder().decode(out.stdout).startsWith(`deno ${OLD_DENO_VERSION} `);
  } catch {
    return false;
  }
}

/** The DENO_DIR this Deno uses (DENO_DIR, or its default), as `deno info` reports it. */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
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
