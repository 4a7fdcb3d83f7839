/**
 * Finds, reads and validates hotreload's config file.
 *
 * Where the config comes from (the first that applies wins):
 * 1. Deno's own `--config <file>` / `-c <file>`, when the user gave it: that
 *    file's `"hotreload"` key. A missing file is an error.
 * 2. `hotreload.json` in the project directory: the whole file is the config.
 * 3. The `"hotreload"` key of `deno.json`, or of `deno.jsonc` when there is no
 *    `deno.json` (the file Deno itself would pick).
 *
 * When `hotreload.json` exists, a `"hotreload"` key in deno.json(c) is ignored
 * (not even read): hotreload.json wins. All three files may be JSONC (comments,
 * trailing commas).
 *
 * Relative paths in the config (`entry`, `processes[].entry`) are relative to
 * the project directory (the cwd), not to the config file. Command-line flags
 * override the file; the file overrides the defaults — merging is the
 * caller's job: `loadConfig` returns only what the file sets, plus the
 * defaults of each custom process.
 *
 * Every problem is a `UsageError` (exit 2) with one line naming the file, the
 * key path and what is expected.
 */
import { basename, resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { parse } from "./jsonc.ts";
import { MAX_PROCESS_COUNT } from "./limits.ts";
import { settingChecks, type SettingValues } from "./settings.ts";
import { type Check, describe, isObject, Validator } from "./validator.ts";

export { HOST } from "./validator.ts";
export { NAME, NAME_RULE } from "./limits.ts";

/**
 * A custom long-running process (queue consumer, timer, ...), each key as
 * its check in PROCESS returns it (the README's "Config file" says what each
 * means); `permissions` undefined: the workers' Deno flags.
 */
export type ProcessConfig = Omit<Checked<typeof PROCESS>, "permissions" | "watch"> & {
  permissions?: string[];
  /** Directories whose files it loads unseen by its module graph (relative to the cwd). */
  watch?: string[];
};
type Checked<T> = { [K in keyof T]: T[K] extends (...args: never[]) => infer R ? R : never };

/** What a config file sets; every key is optional. */
export type FileConfig = SettingValues & {
  entry?: string;
  processes?: ProcessConfig[];
  /** Deno flags for the workers, one flag per string, values attached. */
  denoFlags?: string[];
  /** Arguments for the app. */
  args?: string[];
};

/** A config and where it came from. */
export interface LoadedConfig {
  /**
   * The file the config was read from, as named in error messages (relative
   * to the cwd, or as given with --config); undefined when no file supplied a
   * config (no file, or a deno.json without a "hotreload" key).
   */
  path?: string;
  config: FileConfig;
}

const KEY = "hotreload";

/**
 * Finds and reads the config for the project in `cwd`; see the module
 * comment for where it looks. `denoConfigPath` is the file given with Deno's
 * own `--config`/`-c`, relative to `cwd`.
 */
export function loadConfig(cwd: string, denoConfigPath?: string): LoadedConfig {
  if (denoConfigPath !== undefined) {
    const text = read(cwd, denoConfigPath);
    if (text === undefined) {
      throw new UsageError(`${denoConfigPath}: file not found (given with --config)`);
    }
    return fromKey(cwd, denoConfigPath, text);
  }
  const own = read(cwd, "hotreload.json");
  if (own !== undefined) {
    return {
      path: "hotreload.json",
      config: validateConfig(parseFile("hotreload.json", own), "hotreload.json", cwd, null),
    };
  }
  for (const file of ["deno.json", "deno.jsonc"]) {
    const text = read(cwd, file);
    if (text !== undefined) return fromKey(cwd, file, text);
  }
  return { config: {} };
}

function fromKey(cwd: string, file: string, text: string): LoadedConfig {
  const raw = parseFile(file, text);
  if (!isObject(raw)) {
    throw new UsageError(`${file}: the top level must be an object (got ${describe(raw)})`);
  }
  if (!Object.hasOwn(raw, KEY)) return { config: {} };
  return { path: file, config: validateConfig(raw[KEY], file, cwd, KEY) };
}

/** The file's text, or undefined when it does not exist. */
function read(cwd: string, file: string): string | undefined {
  try {
    return Deno.readTextFileSync(resolve(cwd, file));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new UsageError(`${file}: cannot read it: ${(error as Error).message}`);
  }
}

function parseFile(file: string, text: string): unknown {
  try {
    return parse(text);
  } catch (error) {
    throw new UsageError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Checks a raw config and returns it with the defaults of each process filled
 * in. `file` names the file in messages; `key` is the key the config sits
 * under in that file, prefixed to key paths in messages (`null`: the whole
 * file is the config). By default it is none for a file named hotreload.json
 * and "hotreload" for any other (deno.json, deno.jsonc, --config files).
 */
export function validateConfig(
  raw: unknown,
  file: string,
  cwd: string,
  key: string | null = basename(file) === "hotreload.json" ? null : KEY,
): FileConfig {
  const v = new Validator(file, cwd, key === null ? "" : `${key}.`);
  if (!isObject(raw)) {
    throw new UsageError(
      key === null
        ? `${file}: the top level must be an object (got ${describe(raw)})`
        : `${file}: "${key}" must be an object`,
    );
  }
  const config: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (!Object.hasOwn(TOP, name)) v.unknownKey(name, "", Object.keys(TOP));
    config[name] = TOP[name](v, value, name);
  }
  return config as FileConfig;
}

/** Every key a config file may hold: those of the run settings, and the file-only ones. */
const TOP: Record<string, Check> = {
  entry: (v, x, p) => v.entry(x, p),
  ...settingChecks(),
  processes: (v, x, p) => v.processes(x, p, PROCESS, processDefaults),
  denoFlags: (v, x, p) => v.flags(x, p),
  args: (v, x, p) =>
    v.list(x, p, "an array of strings", (y, q) => {
      if (typeof y !== "string") v.fail(q, "a string", y);
      return y;
    }),
};

/** A custom process's settings when neither the file nor `--process` gives them. */
export function processDefaults(): Omit<ProcessConfig, "name" | "entry" | "permissions" | "watch"> {
  return { count: 1, args: {}, restart: "always", reload: true, grace: 5000 };
}

/** Every key of a custom process in the config file, and its check. */
const PROCESS = {
  name: (v, x, p) => v.name(x, p),
  entry: (v, x, p) => v.entry(x, p),
  count: (v, x, p) => v.whole(x, p, 1, MAX_PROCESS_COUNT),
  args: (v, x, p) => isObject(x) ? x : v.fail(p, "an object", x),
  restart: (v, x, p) => v.oneOf(x, p, ["always", "on-failure", "never"] as const),
  reload: (v, x, p) => v.bool(x, p),
  grace: (v, x, p) => v.ms(x, p, 0),
  permissions: (v, x, p) => v.flags(x, p),
  // Directories whose files the process loads where its module graph cannot see them (a
  // computed import()): a change there restarts it, whatever a .gitignore says.
  watch: (v, x, p) => v.list(x, p, "an array of paths", (y, q) => v.text(y, q, "a path")),
} satisfies Record<string, Check>;
