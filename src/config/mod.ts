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
import { denoFlagArity } from "./deno_flags.ts";
import { UsageError } from "../errors.ts";
import { parse } from "./jsonc.ts";
import { MAX_MS, MAX_PROCESS_COUNT, MAX_WORKERS } from "./limits.ts";

/** A custom long-running process (queue consumer, timer, ...). */
export interface ProcessConfig {
  /** Letters, digits, ".", "_" or "-", starting with a letter or digit; unique. */
  name: string;
  /** Module to run, relative to the project directory; http(s):, jsr: and npm: URLs are not checked. */
  entry: string;
  /** How many copies (default 1). */
  count: number;
  /** Any JSON object handed to the process (default {}). */
  args: Record<string, unknown>;
  /** When to start it again after it exits (default "always"). */
  restart: "always" | "on-failure" | "never";
  /** Restart it when watched files change (default true). */
  reload: boolean;
  /** Milliseconds between asking it to stop and killing it (default 5000). */
  grace: number;
  /**
   * Deno flags for this process, one flag per string, values attached
   * (`"--allow-read=/tmp"`); undefined = the workers' Deno flags.
   */
  permissions?: string[];
}

/** What a config file sets; every key is optional. */
export interface FileConfig {
  entry?: string;
  workers?: number | "auto";
  port?: number;
  host?: string;
  grace?: number;
  readyTimeout?: number;
  reloadBatch?: number;
  name?: string;
  /** false = don't watch; true = default paths; array = paths to watch. */
  watch?: boolean | string[];
  /** Extensions without the dot. */
  ext?: string[];
  /** gitignore-style globs. */
  ignore?: string[];
  gitignore?: boolean;
  /** A number = always poll at that interval (ms); false = never fall back to polling. */
  poll?: number | false;
  debounce?: number;
  maxRequests?: number;
  maxRequestsJitter?: number;
  /** Megabytes; may be fractional. */
  maxMemory?: number;
  memoryCheckInterval?: number;
  processes?: ProcessConfig[];
  /** Deno flags for the workers, one flag per string, values attached. */
  denoFlags?: string[];
  /** Arguments for the app. */
  args?: string[];
  logFormat?: "pretty" | "json";
  /** Path of the deno executable. */
  deno?: string;
}

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
/** What an instance or process name may be made of (it names files and log lines). */
export const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** {@link NAME} in words, for error messages. */
export const NAME_RULE =
  'at most 64 letters, digits, ".", "_" or "-", starting with a letter or digit';
const URL_ENTRY = /^(https?|jsr|npm):/;
/** An IPv4 or IPv6 address or a host name: what `--host` may be. */
export const HOST = /^(?:[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]{2,45})$/;

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
    config[name] = TOP[name as keyof FileConfig](v, value, name);
  }
  return config as FileConfig;
}

type Check = (v: Validator, value: unknown, path: string) => unknown;

const TOP: Record<keyof FileConfig, Check> = {
  entry: (v, x, p) => v.entry(x, p),
  workers: (v, x, p) =>
    x === "auto"
      ? x
      : v.whole(x, p, 1, MAX_WORKERS, `a whole number from 1 to ${MAX_WORKERS} or "auto"`),
  port: (v, x, p) => v.whole(x, p, 1, 65535),
  host: (v, x, p) => v.host(x, p),
  grace: (v, x, p) => v.ms(x, p, 0),
  readyTimeout: (v, x, p) => v.ms(x, p, 1),
  reloadBatch: (v, x, p) => v.whole(x, p, 1),
  name: (v, x, p) => v.name(x, p),
  watch: (v, x, p) =>
    typeof x === "boolean"
      ? x
      : v.list(x, p, "true, false or an array of paths", (y, q) => v.text(y, q, "a path")),
  ext: (v, x, p) => v.list(x, p, 'an array of extensions such as ["ts", "tsx"]', v.extension),
  ignore: (v, x, p) =>
    v.list(x, p, "an array of gitignore-style globs", (y, q) => v.text(y, q, "a glob")),
  gitignore: (v, x, p) => v.bool(x, p),
  poll: (v, x, p) =>
    x === false
      ? x
      : v.whole(x, p, 10, MAX_MS, `a whole number of milliseconds from 10 to ${MAX_MS}, or false`),
  debounce: (v, x, p) => v.ms(x, p, 0),
  maxRequests: (v, x, p) => v.whole(x, p, 1),
  maxRequestsJitter: (v, x, p) => v.whole(x, p, 0),
  maxMemory: (v, x, p) => {
    if (typeof x !== "number" || !Number.isFinite(x) || x <= 0) {
      v.fail(p, "a number of megabytes greater than 0", x);
    }
    return x;
  },
  memoryCheckInterval: (v, x, p) => v.ms(x, p, 100),
  processes: (v, x, p) => v.processes(x, p),
  denoFlags: (v, x, p) => v.flags(x, p),
  args: (v, x, p) =>
    v.list(x, p, "an array of strings", (y, q) => {
      if (typeof y !== "string") v.fail(q, "a string", y);
      return y;
    }),
  logFormat: (v, x, p) => v.oneOf(x, p, ["pretty", "json"]),
  deno: (v, x, p) => v.text(x, p, "the path of a deno executable"),
};

/** A custom process's settings when neither the file nor `--process` gives them. */
export function processDefaults(): Omit<ProcessConfig, "name" | "entry" | "permissions"> {
  return { count: 1, args: {}, restart: "always", reload: true, grace: 5000 };
}

const PROCESS: Record<keyof ProcessConfig, Check> = {
  name: (v, x, p) => v.name(x, p),
  entry: (v, x, p) => v.entry(x, p),
  count: (v, x, p) => v.whole(x, p, 1, MAX_PROCESS_COUNT),
  args: (v, x, p) => {
    if (!isObject(x)) v.fail(p, "an object", x);
    return x;
  },
  restart: (v, x, p) => v.oneOf(x, p, ["always", "on-failure", "never"]),
  reload: (v, x, p) => v.bool(x, p),
  grace: (v, x, p) => v.ms(x, p, 0),
  permissions: (v, x, p) => v.flags(x, p),
};

class Validator {
  constructor(readonly file: string, readonly cwd: string, readonly prefix: string) {}

  /** A key path as shown in messages: a lone key is quoted, a longer path is not. */
  where(path: string): string {
    const full = this.prefix + path;
    return /[.[]/.test(full) ? full : `"${full}"`;
  }

  error(message: string): never {
    throw new UsageError(`${this.file}: ${message}`);
  }

  fail(path: string, expected: string, got: unknown): never {
    this.error(`${this.where(path)} must be ${expected} (got ${describe(got)})`);
  }

  /** `inside`: the path of the object holding the key ("" for the top level). */
  unknownKey(name: string, inside: string, known: string[]): never {
    const near = closest(name, known);
    const hint = near ? `did you mean "${near}"?` : `known keys: ${known.join(", ")}`;
    const where = (this.prefix + inside).replace(/\.$/, "");
    this.error(`unknown key "${name}"${where ? ` in ${where}` : ""} (${hint})`);
  }

  whole(x: unknown, path: string, min: number, max?: number, expected?: string): number {
    if (
      typeof x !== "number" || !Number.isSafeInteger(x) || x < min || (max !== undefined && x > max)
    ) {
      this.fail(
        path,
        expected ??
          (max === undefined
            ? `a whole number of at least ${min}`
            : `a whole number from ${min} to ${max}`),
        x,
      );
    }
    return x;
  }

  ms(x: unknown, path: string, min: number): number {
    return this.whole(
      x,
      path,
      min,
      MAX_MS,
      `a whole number of milliseconds from ${min} to ${MAX_MS}`,
    );
  }

  host(x: unknown, path: string): string {
    if (typeof x !== "string" || !HOST.test(x)) {
      this.fail(path, "an IP address or host name such as 127.0.0.1 or ::1", x);
    }
    return x;
  }

  bool(x: unknown, path: string): boolean {
    if (typeof x !== "boolean") this.fail(path, "true or false", x);
    return x;
  }

  text(x: unknown, path: string, what: string): string {
    if (typeof x !== "string" || x === "") this.fail(path, `a non-empty string (${what})`, x);
    return x;
  }

  oneOf<T extends string>(x: unknown, path: string, values: readonly T[]): T {
    if (!values.includes(x as T)) {
      this.fail(path, `one of ${values.map((s) => `"${s}"`).join(", ")}`, x);
    }
    return x as T;
  }

  name(x: unknown, path: string): string {
    if (typeof x !== "string" || !NAME.test(x)) this.fail(path, NAME_RULE, x);
    return x;
  }

  list<T>(x: unknown, path: string, expected: string, item: (y: unknown, q: string) => T): T[] {
    if (!Array.isArray(x)) this.fail(path, expected, x);
    return x.map((y, i) => item(y, `${path}[${i}]`));
  }

  extension = (x: unknown, path: string): string => {
    const ext = typeof x === "string" ? x.replace(/^\./, "") : "";
    if (ext === "" || ext.startsWith(".") || /[\s,/\\*?]/.test(ext)) {
      this.fail(path, 'an extension such as "ts"', x);
    }
    return ext;
  };

  entry(x: unknown, path: string): string {
    const entry = this.text(x, path, "a module path relative to the project directory");
    if (entry.startsWith("-")) {
      this.error(`${this.where(path)} "${entry}" looks like a flag; an entry is a path or URL`);
    }
    if (URL_ENTRY.test(entry)) return entry;
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(resolve(this.cwd, entry));
    } catch {
      this.error(`${this.where(path)} "${entry}" not found`);
    }
    if (!info.isFile) this.error(`${this.where(path)} "${entry}" is not a file`);
    return entry;
  }

  flags(x: unknown, path: string): string[] {
    return this.list(x, path, 'an array of Deno flags such as ["--allow-net"]', (y, q) => {
      if (typeof y !== "string" || !/^-[^-]|^--[^-=]/.test(y)) {
        this.fail(q, 'a Deno flag such as "--allow-net"', y);
      }
      let arity;
      try {
        arity = denoFlagArity(y);
      } catch (error) {
        this.error(`${this.where(q)}: ${(error as Error).message}`);
      }
      const flag = y.split("=")[0];
      if (arity === undefined) this.error(`${this.where(q)} "${y}" is not a "deno run" flag`);
      if (arity === "required" && !y.includes("=")) {
        this.error(`${this.where(q)} "${y}" needs its value in the same string: "${flag}=<value>"`);
      }
      if (arity === "none" && y.includes("=")) {
        this.error(`${this.where(q)} "${y}": ${flag} takes no value`);
      }
      return y;
    });
  }

  processes(x: unknown, path: string): ProcessConfig[] {
    const seen = new Set<string>();
    return this.list(x, path, "an array of process objects", (item, at) => {
      if (!isObject(item)) this.fail(at, 'an object with "name" and "entry"', item);
      const process: Record<string, unknown> = processDefaults();
      for (const [name, value] of Object.entries(item)) {
        if (!Object.hasOwn(PROCESS, name)) this.unknownKey(name, at, Object.keys(PROCESS));
        process[name] = PROCESS[name as keyof ProcessConfig](this, value, `${at}.${name}`);
      }
      if (!Object.hasOwn(item, "name")) {
        this.error(`${this.where(at)}.name is required (${NAME_RULE})`);
      }
      if (!Object.hasOwn(item, "entry")) {
        this.error(`${this.where(at)}.entry is required (the module to run)`);
      }
      const name = process.name as string;
      if (seen.has(name)) this.error(`duplicate process name "${name}" at ${this.where(at)}`);
      seen.add(name);
      return process as unknown as ProcessConfig;
    });
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A value as shown after "got": JSON for scalars, its kind for arrays and objects. */
function describe(x: unknown): string {
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object" && x !== null) return "an object";
  const json = JSON.stringify(x) ?? String(x);
  return json.length > 60 ? `${json.slice(0, 56)}..."` : json;
}

/**
 * The known key nearest to `name` when it is near enough to be a typo
 * (case, "-" and "_" ignored; at most 1 edit for short keys, 2 otherwise).
 */
function closest(name: string, known: string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(norm(name), norm(candidate));
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= (norm(name).length <= 4 ? 1 : 2) ? best : undefined;
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
