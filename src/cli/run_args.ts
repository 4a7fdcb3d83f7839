/**
 * Turns `hotreload run` arguments into a checked configuration. Options and
 * Deno flags may come before or after the entry, in any order; app arguments
 * only after `--`. Argument parsing proper is `node:util`'s parseArgs.
 */
import { parseArgs } from "node:util";
import { denoFlagArity } from "../config/deno_flags.ts";
import { UsageError } from "../errors.ts";
import { findRunOption, RUN_OPTIONS } from "./run_options.ts";
import {
  HOST,
  loadConfig,
  NAME,
  NAME_RULE,
  type ProcessConfig,
  processDefaults,
} from "../config/mod.ts";
import { MAX_MS, MAX_PROCESS_INSTANCES, MAX_WORKERS } from "../config/limits.ts";

/** What `hotreload run` was asked to do, validated. */
export interface RunConfig {
  /** The entry as given (relative to cwd, or absolute). */
  entry: string;
  cwd: string;
  name: string;
  workers: number;
  port?: number;
  host?: string;
  graceMs: number;
  readyTimeoutMs: number;
  reloadBatch: number;
  deno?: string;
  denoFlags: string[];
  appArgs: string[];
  watch: false | WatchConfig;
  processes: ProcessConfig[];
  maxRequests?: number;
  maxRequestsJitter: number;
  maxMemoryMB?: number;
  memoryCheckIntervalMs: number;
  logFormat: "pretty" | "json";
  help: boolean;
}

/** File watching settings (flags over the config file). */
export interface WatchConfig {
  paths: string[];
  extensions?: string[];
  ignore: string[];
  gitignore: boolean;
  debounceMs: number;
  poll: { mode: "auto" | "force" | "never"; intervalMs?: number };
}

const HINT = 'see "hotreload run --help"';

/** Separates hotreload's options, Deno's flags, the entry and the app's arguments. */
export function splitRunArgv(argv: string[]) {
  const ours: string[] = [];
  const denoFlags: string[] = [];
  let appArgs: string[] = [];
  let entry: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i];
    if (token === "--") {
      appArgs = argv.slice(i + 1);
      break;
    }
    if (!token.startsWith("-") || token === "-") {
      if (entry !== undefined) {
        throw new UsageError(
          `unexpected argument "${token}": app arguments go after --, as in ` +
            `"hotreload run ${entry} -- ${token}"`,
        );
      }
      entry = token;
      continue;
    }
    const option = findRunOption(token);
    if (option) {
      const attached = token.startsWith("--") ? token.includes("=") : token.length > 2;
      if (option.type === "string" && !attached) {
        if (i + 1 >= argv.length) throw new UsageError(`${token} needs a value (${option.value})`);
        // Attached, so that a value such as "-1" reaches our range check, not
        // parseArgs's "ambiguous argument" complaint.
        ours.push(`--${option.name}=${argv[++i]}`);
      } else {
        ours.push(token);
      }
      continue;
    }
    let arity;
    try {
      arity = denoFlagArity(token);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (arity === undefined) {
      throw new UsageError(
        `unknown option ${
          token.split("=")[0]
        }: it is neither a hotreload option nor a Deno flag; ${HINT}`,
      );
    }
    denoFlags.push(token);
    if (arity === "required" && !token.includes("=") && !/^-[A-Za-z].+/.test(token)) {
      if (i + 1 >= argv.length) throw new UsageError(`Deno flag ${token} needs a value`);
      denoFlags.push(argv[++i]);
    }
  }
  return { entry, ours, denoFlags, appArgs };
}

function parseWhole(
  flag: string,
  raw: string | undefined,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${flag} must be a whole number ${range} (got "${raw}")`);
  }
  return Number(raw);
}

/** A duration flag: whole milliseconds from `min` to one day (timers overflow beyond 2^31 - 1). */
function parseMs(flag: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw !== undefined && /^\d+$/.test(raw) && Number(raw) > MAX_MS) {
    throw new UsageError(
      `${flag} must be at most ${MAX_MS} ms (one day) (got "${raw}")`,
    );
  }
  return parseWhole(flag, raw, fallback, min);
}

function parseWorkers(raw: string | undefined): number {
  if (raw === "auto") return navigator.hardwareConcurrency;
  if (raw !== undefined && !/^\d+$/.test(raw)) {
    throw new UsageError(`--workers must be a whole number of at least 1, or auto (got "${raw}")`);
  }
  return parseWhole("--workers", raw, 1, 1, MAX_WORKERS);
}

function defaultName(entry: string): string {
  const base = entry.split("/").pop()!.replace(/\.[^.]+$/, "");
  return base.replace(/[^A-Za-z0-9._-]/g, "_") || "app";
}

function checkEntry(entry: string | undefined, cwd: string, what = "entry"): string {
  if (entry === undefined) {
    throw new UsageError('missing entry: "hotreload run <entry.ts> [options]"; ' + HINT);
  }
  if (entry.startsWith("-")) {
    throw new UsageError(`${what} "${entry}" looks like a flag; an entry is a path or URL`);
  }
  if (/^(https?|jsr|npm):/.test(entry)) return entry;
  const path = entry.startsWith("/") ? entry : `${cwd}/${entry}`;
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    throw new UsageError(`${what} file not found: ${entry} (in ${cwd}); check the path`);
  }
  if (!info.isFile) throw new UsageError(`${what} ${entry} is not a file; give a main module`);
  return entry;
}

/** `--process queue=processes/queue.ts`: one instance, restarted always, reloaded with the code. */
function parseProcessFlags(values: string[] | undefined, cwd: string): ProcessConfig[] {
  const processes: ProcessConfig[] = [];
  for (const value of values ?? []) {
    const at = value.indexOf("=");
    const name = value.slice(0, at);
    if (at <= 0 || !NAME.test(name) || at === value.length - 1) {
      throw new UsageError(
        `--process takes name=entry, e.g. --process queue=processes/queue.ts (got "${value}")`,
      );
    }
    if (processes.some((p) => p.name === name)) {
      throw new UsageError(
        `--process: the name "${name}" is used twice; give each process its own`,
      );
    }
    const entry = checkEntry(value.slice(at + 1), cwd, `--process ${name}:`);
    processes.push({ name, entry, ...processDefaults() });
  }
  return processes;
}

/** The `--config`/`-c` file among the Deno flags, if any (Deno's flag; its "hotreload" key is ours). */
function denoConfigFile(denoFlags: string[]): string | undefined {
  for (let i = 0; i < denoFlags.length; i++) {
    const flag = denoFlags[i];
    if (flag === "--config" || flag === "-c") return denoFlags[i + 1];
    const attached = flag.match(/^(?:--config|-c)=(.*)$/);
    if (attached) return attached[1];
  }
  return undefined;
}

/** Parses and validates `hotreload run` arguments, on top of the config file. */
export function parseRunArgs(argv: string[], cwd: string): RunConfig {
  const split = splitRunArgv(argv);
  const options = Object.fromEntries(
    RUN_OPTIONS.map((o) => [o.name, {
      type: o.type,
      multiple: o.multiple ?? false,
      ...(o.short ? { short: o.short } : {}),
    }]),
  );
  // deno-lint-ignore no-explicit-any
  let values: Record<string, any>;
  try {
    values = parseArgs({ args: split.ours, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; ${HINT}`);
  }
  if (values.help) {
    return { help: true } as RunConfig;
  }
  // Flags > config file > defaults.
  const file = loadConfig(cwd, denoConfigFile(split.denoFlags)).config;
  const entry = checkEntry(split.entry ?? file.entry, cwd);
  const name = values.name ?? file.name ?? defaultName(entry);
  if (!NAME.test(name)) throw new UsageError(`--name must be ${NAME_RULE} (got "${name}")`);
  if (values.poll !== undefined && values["no-poll"]) {
    throw new UsageError("--poll and --no-poll contradict each other; keep one");
  }
  const logFormat = values["log-format"] ?? file.logFormat ?? "pretty";
  if (logFormat !== "pretty" && logFormat !== "json") {
    throw new UsageError(`--log-format must be pretty or json (got "${logFormat}")`);
  }
  const watchOff = values["no-watch"] || (values.watch === undefined && file.watch === false);
  const pollMs = values.poll !== undefined
    ? parseMs("--poll", values.poll, 500, 10)
    : typeof file.poll === "number"
    ? file.poll
    : undefined;
  const noPoll = values["no-poll"] || (values.poll === undefined && file.poll === false);
  const watch: WatchConfig | false = watchOff ? false : {
    paths: values.watch ?? (Array.isArray(file.watch) ? file.watch : []),
    extensions: values.ext !== undefined
      ? values.ext.split(",").map((e: string) => e.trim().replace(/^\./, "")).filter(Boolean)
      : file.ext,
    ignore: values.ignore ?? file.ignore ?? [],
    gitignore: values["no-gitignore"] ? false : file.gitignore ?? true,
    debounceMs: parseMs("--debounce", values.debounce, file.debounce ?? 50, 0),
    poll: pollMs !== undefined
      ? { mode: "force", intervalMs: pollMs }
      : { mode: noPoll ? "never" : "auto" },
  };
  // --process adds to the file's processes; one with the same name replaces the file's.
  const flagProcesses = parseProcessFlags(values.process, cwd);
  const processes = [
    ...(file.processes ?? []).filter((p) => !flagProcesses.some((f) => f.name === p.name)),
    ...flagProcesses,
  ];
  const instances = processes.reduce((n, p) => n + p.count, 0);
  if (instances > MAX_PROCESS_INSTANCES) {
    throw new UsageError(
      `${instances} custom-process instances in all; at most ${MAX_PROCESS_INSTANCES} are allowed`,
    );
  }
  return {
    entry,
    cwd,
    name,
    workers: values.workers !== undefined
      ? parseWorkers(values.workers)
      : file.workers === "auto"
      ? navigator.hardwareConcurrency
      : file.workers ?? 1,
    port: values.port !== undefined ? parseWhole("--port", values.port, 0, 1, 65535) : file.port,
    host: values.host !== undefined ? parseHost(values.host) : file.host,
    graceMs: parseMs("--grace", values.grace, file.grace ?? 5000, 0),
    readyTimeoutMs: parseMs(
      "--ready-timeout",
      values["ready-timeout"],
      file.readyTimeout ?? 10_000,
      1,
    ),
    reloadBatch: parseWhole("--reload-batch", values["reload-batch"], file.reloadBatch ?? 1, 1),
    maxRequests: values["max-requests"] !== undefined
      ? parseWhole("--max-requests", values["max-requests"], 0, 1)
      : file.maxRequests,
    maxRequestsJitter: parseWhole(
      "--max-requests-jitter",
      values["max-requests-jitter"],
      file.maxRequestsJitter ?? 0,
      0,
    ),
    maxMemoryMB: values["max-memory"] !== undefined
      ? parsePositive("--max-memory", values["max-memory"])
      : file.maxMemory,
    memoryCheckIntervalMs: parseMs(
      "--memory-check-interval",
      values["memory-check-interval"],
      file.memoryCheckInterval ?? 5000,
      100,
    ),
    logFormat,
    deno: values.deno ?? file.deno,
    // Deno flags from the file come first; the command line's add to them.
    denoFlags: [...(file.denoFlags ?? []), ...split.denoFlags],
    appArgs: split.appArgs.length > 0 ? split.appArgs : file.args ?? [],
    watch,
    processes,
    help: false,
  };
}

function parsePositive(flag: string, raw: string): number {
  if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) <= 0) {
    throw new UsageError(`${flag} must be a number of megabytes above 0 (got "${raw}")`);
  }
  return Number(raw);
}

function parseHost(raw: string): string {
  if (!HOST.test(raw)) {
    throw new UsageError(
      `--host must be an IP address or host name such as 127.0.0.1 or ::1 (got "${raw}")`,
    );
  }
  return raw;
}
