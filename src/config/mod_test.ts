/**
 * Config loading: every source, precedence, validation messages and process
 * defaults. Each test works in a fresh temp directory.
 */
import assert from "node:assert/strict";
import { loadConfig, validateConfig } from "./mod.ts";
import { UsageError } from "../errors.ts";

/** Runs `fn` in a temp dir holding `files` (path → content; a trailing "/" makes a directory). */
async function inDir<T>(
  files: Record<string, string>,
  fn: (dir: string) => T | Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "hotreload_config_" });
  try {
    for (const [path, content] of Object.entries(files)) {
      const full = `${dir}/${path}`;
      if (path.endsWith("/")) {
        await Deno.mkdir(full, { recursive: true });
        continue;
      }
      await Deno.mkdir(full.slice(0, full.lastIndexOf("/")), { recursive: true });
      await Deno.writeTextFile(full, content);
    }
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The message of the UsageError that `fn` throws (fails if it throws anything else or nothing). */
function usageError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof UsageError, `expected a UsageError, got ${error}`);
    assert.equal(error.kind, "usage");
    assert.ok(!error.message.includes("\n"), `message is not one line: ${error.message}`);
    return error.message;
  }
  assert.fail("expected a UsageError, but nothing was thrown");
}

/** The error message of loading `hotreload.json` with `config` (plus `files`). */
function hotreloadJsonError(config: unknown, files: Record<string, string> = {}) {
  return inDir(
    { "hotreload.json": JSON.stringify(config), ...files },
    (dir) => usageError(() => loadConfig(dir)),
  );
}

const APP = { "main.ts": "", "jobs/q.ts": "" };

// ---------------------------------------------------------------- sources

Deno.test("hotreload.json: the whole file is the config", async () => {
  await inDir({ ...APP, "hotreload.json": '{ "workers": 3, "port": 8080, "entry": "main.ts" }' }, (
    dir,
  ) => {
    assert.deepEqual(loadConfig(dir), {
      path: "hotreload.json",
      config: { workers: 3, port: 8080, entry: "main.ts" },
    });
  });
});

Deno.test('deno.json: the "hotreload" key is the config, other keys are ignored', async () => {
  const denoJson = {
    tasks: { dev: "x" },
    imports: {},
    hotreload: { workers: "auto", name: "api" },
  };
  await inDir({ "deno.json": JSON.stringify(denoJson) }, (dir) => {
    assert.deepEqual(loadConfig(dir), {
      path: "deno.json",
      config: { workers: "auto", name: "api" },
    });
  });
});

Deno.test("deno.jsonc: comments and trailing commas are accepted", async () => {
  const text = `// project config
{
  "tasks": { "dev": "deno run -A main.ts", }, /* a block
  comment over two lines */
  "hotreload": {
    "workers": 2, // two workers
    "ignore": ["dist/**", "*.log",],
    "watch": ["src", "lib"],
  },
}
`;
  await inDir({ "deno.jsonc": text }, (dir) => {
    assert.deepEqual(loadConfig(dir), {
      path: "deno.jsonc",
      config: { workers: 2, ignore: ["dist/**", "*.log"], watch: ["src", "lib"] },
    });
  });
});

Deno.test("hotreload.json may be JSONC too", async () => {
  await inDir({ "hotreload.json": '{ /* c */ "port": 9000, // c\n}' }, (dir) => {
    assert.deepEqual(loadConfig(dir).config, { port: 9000 });
  });
});

Deno.test('--config: that file\'s "hotreload" key, relative to cwd, wins over hotreload.json', async () => {
  await inDir({
    "conf/dev.jsonc": '{ "hotreload": { "workers": 7 }, // dev\n }',
    "hotreload.json": '{ "workers": 1 }',
    "deno.json": '{ "hotreload": { "workers": 2 } }',
  }, (dir) => {
    assert.deepEqual(loadConfig(dir, "conf/dev.jsonc"), {
      path: "conf/dev.jsonc",
      config: { workers: 7 },
    });
    assert.deepEqual(loadConfig(dir, `${dir}/conf/dev.jsonc`).config, { workers: 7 });
  });
});

Deno.test("--config: a missing file is an error", async () => {
  await inDir({ "hotreload.json": "{}" }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir, "nope.json")),
      "nope.json: file not found (given with --config)",
    );
  });
});

Deno.test('--config: a file without a "hotreload" key gives an empty config', async () => {
  await inDir({ "other.json": '{ "tasks": {} }', "hotreload.json": '{ "workers": 3 }' }, (dir) => {
    assert.deepEqual(loadConfig(dir, "other.json"), { config: {} });
  });
});

Deno.test("--config: key paths in messages are prefixed with hotreload.", async () => {
  await inDir({ "hotreload.json": '{ "hotreload": { "port": 0 } }' }, (dir) => {
    // even a --config file that happens to be named hotreload.json is read by its key
    assert.equal(
      usageError(() => loadConfig(dir, "hotreload.json")),
      "hotreload.json: hotreload.port must be a whole number from 1 to 65535 (got 0)",
    );
  });
});

Deno.test('hotreload.json wins over deno.json\'s "hotreload" key (which is not even read)', async () => {
  await inDir({
    "hotreload.json": '{ "workers": 4 }',
    "deno.json": '{ "hotreload": { "workers": "not valid" }, this is not JSON',
  }, (dir) => {
    assert.deepEqual(loadConfig(dir), { path: "hotreload.json", config: { workers: 4 } });
  });
});

Deno.test("deno.json wins over deno.jsonc, as in Deno", async () => {
  await inDir({
    "deno.json": '{ "hotreload": { "workers": 5 } }',
    "deno.jsonc": '{ "hotreload": { "workers": 6 } }',
  }, (dir) => {
    assert.deepEqual(loadConfig(dir), { path: "deno.json", config: { workers: 5 } });
  });
});

Deno.test("no config file at all: empty config, no path", async () => {
  await inDir({ "main.ts": "" }, (dir) => {
    const loaded = loadConfig(dir);
    assert.deepEqual(loaded, { config: {} });
    assert.equal(loaded.path, undefined);
  });
});

Deno.test('deno.json without a "hotreload" key: empty config, no path', async () => {
  await inDir({ "deno.json": '{ "tasks": {} }' }, (dir) => {
    assert.deepEqual(loadConfig(dir), { config: {} });
  });
});

// ---------------------------------------------------------------- valid values

Deno.test("every key: valid values are kept, ext loses its leading dot", async () => {
  const config = {
    entry: "main.ts",
    workers: 1024,
    port: 65535,
    grace: 0,
    readyTimeout: 1,
    reloadBatch: 2,
    name: "my-app_1.0",
    watch: false,
    ext: [".ts", "tsx", "d.ts"],
    ignore: ["dist/**"],
    gitignore: false,
    rebalance: false,
    poll: 10,
    debounce: 0,
    maxRequests: 1,
    maxRequestsJitter: 0,
    maxMemory: 0.5,
    memoryCheckInterval: 100,
    processes: [],
    denoFlags: ["-A", "--allow-read=/tmp", "--import-map=map.json", "-c=deno.json", "--no-check"],
    args: ["--verbose", "x"],
    logFormat: "json",
    deno: "/usr/bin/deno",
  };
  await inDir({ ...APP, "hotreload.json": JSON.stringify(config) }, (dir) => {
    assert.deepEqual(loadConfig(dir).config, { ...config, ext: ["ts", "tsx", "d.ts"] });
  });
  await inDir(
    { "hotreload.json": '{ "poll": false, "watch": true, "workers": "auto" }' },
    (dir) => {
      assert.deepEqual(loadConfig(dir).config, { poll: false, watch: true, workers: "auto" });
    },
  );
});

Deno.test("processes: defaults are filled in", async () => {
  await inDir({
    ...APP,
    "hotreload.json": '{ "processes": [{ "name": "q", "entry": "jobs/q.ts" }] }',
  }, (
    dir,
  ) => {
    const [process] = loadConfig(dir).config.processes!;
    assert.deepEqual(process, {
      name: "q",
      entry: "jobs/q.ts",
      count: 1,
      args: {},
      restart: "always",
      reload: true,
      grace: 5000,
    });
    assert.ok(!("permissions" in process), "permissions stays undefined (inherit)");
  });
});

Deno.test("processes: given values are kept, URL entries are not checked", async () => {
  const given = {
    name: "timer",
    entry: "jobs/q.ts",
    count: 3,
    args: { queue: "mail", nested: [1, { a: null }] },
    restart: "on-failure",
    reload: false,
    grace: 0,
    permissions: ["--allow-net", "--allow-read=/tmp", "-E"],
  };
  const remote = { name: "r", entry: "https://example.com/x.ts", restart: "never" };
  await inDir({
    ...APP,
    "deno.json": JSON.stringify({ hotreload: { processes: [given, remote] } }),
  }, (
    dir,
  ) => {
    const processes = loadConfig(dir).config.processes!;
    assert.deepEqual(processes[0], given);
    assert.deepEqual(processes[1], {
      name: "r",
      entry: "https://example.com/x.ts",
      count: 1,
      args: {},
      restart: "never",
      reload: true,
      grace: 5000,
    });
  });
});

// ---------------------------------------------------------------- errors

Deno.test("error: workers", async () => {
  assert.equal(
    await hotreloadJsonError({ workers: "abc" }),
    'hotreload.json: "workers" must be a whole number from 1 to 1024 or "auto" (got "abc")',
  );
  for (const bad of [0, 1025, 1.5, "4", null, true]) {
    assert.match(
      await hotreloadJsonError({ workers: bad }),
      /^hotreload\.json: "workers" must be a whole number from 1 to 1024 or "auto" \(got .+\)$/,
    );
  }
});

Deno.test("error: restart in deno.json, key path prefixed with hotreload.", async () => {
  const hotreload = {
    processes: [
      { name: "a", entry: "main.ts" },
      { name: "b", entry: "main.ts", restart: "sometimes" },
    ],
  };
  await inDir({ ...APP, "deno.json": JSON.stringify({ hotreload }) }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      'deno.json: hotreload.processes[1].restart must be one of "always", "on-failure", "never" (got "sometimes")',
    );
  });
});

Deno.test("error: unknown keys, with a suggestion when close", async () => {
  assert.equal(
    await hotreloadJsonError({ wrokers: 2 }),
    'hotreload.json: unknown key "wrokers" (did you mean "workers"?)',
  );
  assert.equal(
    await hotreloadJsonError({ "ready-timeout": 2 }),
    'hotreload.json: unknown key "ready-timeout" (did you mean "readyTimeout"?)',
  );
  assert.match(
    await hotreloadJsonError({ banana: 2 }),
    /^hotreload\.json: unknown key "banana" \(known keys: entry, workers, port, .*, deno, processes, denoFlags, args\)$/,
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "q", entry: "main.ts", cuont: 2 }] }, APP),
    'hotreload.json: unknown key "cuont" in processes[0] (did you mean "count"?)',
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "q", entry: "main.ts", port: 2 }] }, APP),
    'hotreload.json: unknown key "port" in processes[0] ' +
      "(known keys: name, entry, count, args, restart, reload, grace, permissions, watch)",
  );
  await inDir({ "deno.json": '{ "hotreload": { "prot": 80 } }' }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      'deno.json: unknown key "prot" in hotreload (did you mean "port"?)',
    );
  });
});

Deno.test("error: process entry not found, or not a file", async () => {
  const processes = (entry: string) => ({ processes: [{ name: "q", entry }] });
  assert.equal(
    await hotreloadJsonError(processes("jobs/q.ts")),
    'hotreload.json: processes[0].entry "jobs/q.ts" not found',
  );
  assert.equal(
    await hotreloadJsonError(processes("jobs"), { "jobs/": "" }),
    'hotreload.json: processes[0].entry "jobs" is not a file',
  );
  assert.equal(
    await hotreloadJsonError(processes("")),
    "hotreload.json: processes[0].entry must be a non-empty string " +
      '(a module path relative to the project directory) (got "")',
  );
  assert.equal(
    await hotreloadJsonError({ entry: "app.ts" }),
    'hotreload.json: "entry" "app.ts" not found',
  );
});

Deno.test("error: duplicate process names", async () => {
  const p = (name: string) => ({ name, entry: "main.ts" });
  assert.equal(
    await hotreloadJsonError({ processes: [p("queue"), p("timer"), p("queue")] }, APP),
    'hotreload.json: duplicate process name "queue" at processes[2]',
  );
});

Deno.test("error: process objects need a valid name and an entry", async () => {
  assert.equal(
    await hotreloadJsonError({ processes: [{ entry: "main.ts" }] }, APP),
    'hotreload.json: processes[0].name is required (at most 64 letters, digits, ".", "_" or "-", ' +
      "starting with a letter or digit)",
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "q" }] }, APP),
    "hotreload.json: processes[0].entry is required (the module to run)",
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "-q", entry: "main.ts" }] }, APP),
    'hotreload.json: processes[0].name must be at most 64 letters, digits, ".", "_" or "-", ' +
      'starting with a letter or digit (got "-q")',
  );
  assert.equal(
    await hotreloadJsonError({ processes: ["main.ts"] }, APP),
    'hotreload.json: processes[0] must be an object with "name" and "entry" (got "main.ts")',
  );
  assert.equal(
    await hotreloadJsonError({ processes: { q: "main.ts" } }, APP),
    'hotreload.json: "processes" must be an array of process objects (got an object)',
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "q", entry: "main.ts", args: [1] }] }, APP),
    "hotreload.json: processes[0].args must be an object (got an array)",
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "q", entry: "main.ts", count: 0 }] }, APP),
    "hotreload.json: processes[0].count must be a whole number from 1 to 64 (got 0)",
  );
  assert.equal(
    await hotreloadJsonError({ processes: [{ name: "q", entry: "main.ts", reload: "no" }] }, APP),
    'hotreload.json: processes[0].reload must be true or false (got "no")',
  );
});

Deno.test("error: deno flags in permissions and denoFlags", async () => {
  const perm = (flag: unknown) => ({
    processes: [{ name: "q", entry: "main.ts", permissions: [flag] }],
  });
  assert.equal(
    await hotreloadJsonError(perm("--allow-nett"), APP),
    'hotreload.json: processes[0].permissions[0] "--allow-nett" is not a "deno run" flag',
  );
  assert.equal(
    await hotreloadJsonError(perm("--import-map"), APP),
    'hotreload.json: processes[0].permissions[0] "--import-map" needs its value in the same ' +
      'string: "--import-map=<value>"',
  );
  assert.equal(
    await hotreloadJsonError(perm("-c"), APP),
    'hotreload.json: processes[0].permissions[0] "-c" needs its value in the same string: "-c=<value>"',
  );
  assert.equal(
    await hotreloadJsonError(perm("--no-remote=yes"), APP),
    'hotreload.json: processes[0].permissions[0] "--no-remote=yes": --no-remote takes no value',
  );
  assert.equal(
    await hotreloadJsonError(perm("net"), APP),
    'hotreload.json: processes[0].permissions[0] must be a Deno flag such as "--allow-net" (got "net")',
  );
  assert.equal(
    await hotreloadJsonError({ denoFlags: ["-A", "--hmr"] }),
    "hotreload.json: denoFlags[1]: --hmr is not supported: hotreload reloads workers itself; drop --hmr",
  );
  assert.equal(
    await hotreloadJsonError({ denoFlags: "-A" }),
    'hotreload.json: "denoFlags" must be an array of Deno flags such as ["--allow-net"] (got "-A")',
  );
});

Deno.test("error: numbers and other values out of range", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ port: 0 }, '"port" must be a whole number from 1 to 65535 (got 0)'],
    [{ port: 65536 }, '"port" must be a whole number from 1 to 65535 (got 65536)'],
    [{ port: "80" }, '"port" must be a whole number from 1 to 65535 (got "80")'],
    [{ grace: -1 }, '"grace" must be a whole number of milliseconds from 0 to 86400000 (got -1)'],
    [{ grace: 1.5 }, '"grace" must be a whole number of milliseconds from 0 to 86400000 (got 1.5)'],
    [
      { readyTimeout: 0 },
      '"readyTimeout" must be a whole number of milliseconds from 1 to 86400000 (got 0)',
    ],
    [{ reloadBatch: 0 }, '"reloadBatch" must be a whole number of at least 1 (got 0)'],
    [
      { poll: 5 },
      '"poll" must be a whole number of milliseconds from 10 to 86400000, or false (got 5)',
    ],
    [
      { poll: true },
      '"poll" must be a whole number of milliseconds from 10 to 86400000, or false (got true)',
    ],
    [
      { debounce: "x" },
      '"debounce" must be a whole number of milliseconds from 0 to 86400000 (got "x")',
    ],
    [{ maxRequests: 0 }, '"maxRequests" must be a whole number of at least 1 (got 0)'],
    [
      { maxRequestsJitter: -1 },
      '"maxRequestsJitter" must be a whole number of at least 0 (got -1)',
    ],
    [{ maxMemory: 0 }, '"maxMemory" must be a number of megabytes greater than 0 (got 0)'],
    [
      { memoryCheckInterval: 99 },
      '"memoryCheckInterval" must be a whole number of milliseconds from 100 to 86400000 (got 99)',
    ],
    [
      { name: "my app" },
      '"name" must be at most 64 letters, digits, ".", "_" or "-", starting with a letter or digit (got "my app")',
    ],
    [{ watch: "src" }, '"watch" must be true, false or an array of paths (got "src")'],
    [{ watch: ["src", 3] }, "watch[1] must be a non-empty string (a path) (got 3)"],
    [{ ext: ["*.ts"] }, 'ext[0] must be an extension such as "ts" (got "*.ts")'],
    [{ ext: ["."] }, 'ext[0] must be an extension such as "ts" (got ".")'],
    [{ ignore: [""] }, 'ignore[0] must be a non-empty string (a glob) (got "")'],
    [{ gitignore: "no" }, '"gitignore" must be true or false (got "no")'],
    [{ rebalance: "off" }, '"rebalance" must be true or false (got "off")'],
    [{ args: ["a", 1] }, "args[1] must be a string (got 1)"],
    [{ logFormat: "xml" }, '"logFormat" must be one of "pretty", "json" (got "xml")'],
    [{ deno: "" }, '"deno" must be a non-empty string (the path of a deno executable) (got "")'],
  ];
  for (const [config, message] of cases) {
    assert.equal(await hotreloadJsonError(config), `hotreload.json: ${message}`);
  }
});

Deno.test("error: invalid JSON, with line and column", async () => {
  await inDir({ "hotreload.json": '{\n  "workers": 2\n  "port": 80\n}' }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      "hotreload.json is not valid JSON: Expected ',' or '}' after property value at line 3 column 3",
    );
  });
  await inDir({ "deno.jsonc": "{\n  // c\n  \"hotreload\": { 'port': 80 }\n}" }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      "deno.jsonc is not valid JSON: Expected property name or '}' at line 3 column 18",
    );
  });
  await inDir({ "hotreload.json": '{\n  "workers": tru\n}' }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      "hotreload.json is not valid JSON: Unexpected token '\\n' at line 2 column 17",
    );
  });
  await inDir({ "hotreload.json": "" }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      "hotreload.json is not valid JSON: Unexpected end of JSON input",
    );
  });
});

Deno.test("error: the config must be an object", async () => {
  for (const hotreload of [[], "x", null, 3]) {
    await inDir({ "deno.json": JSON.stringify({ hotreload }) }, (dir) => {
      assert.equal(usageError(() => loadConfig(dir)), 'deno.json: "hotreload" must be an object');
    });
  }
  assert.equal(
    await hotreloadJsonError([{ workers: 2 }]),
    "hotreload.json: the top level must be an object (got an array)",
  );
  assert.equal(
    await hotreloadJsonError("workers"),
    'hotreload.json: the top level must be an object (got "workers")',
  );
  await inDir({ "deno.json": "[]" }, (dir) => {
    assert.equal(
      usageError(() => loadConfig(dir)),
      "deno.json: the top level must be an object (got an array)",
    );
  });
});

Deno.test("validateConfig: prefix follows the file name unless a key is given", async () => {
  await inDir({}, (dir) => {
    assert.equal(
      usageError(() => validateConfig({ port: 0 }, "hotreload.json", dir)),
      'hotreload.json: "port" must be a whole number from 1 to 65535 (got 0)',
    );
    assert.equal(
      usageError(() => validateConfig({ port: 0 }, "deno.jsonc", dir)),
      "deno.jsonc: hotreload.port must be a whole number from 1 to 65535 (got 0)",
    );
    assert.equal(
      usageError(() => validateConfig({ port: 0 }, "conf/x.json", dir, null)),
      'conf/x.json: "port" must be a whole number from 1 to 65535 (got 0)',
    );
    assert.deepEqual(validateConfig({}, "hotreload.json", dir), {});
  });
});
