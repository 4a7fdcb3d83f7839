/**
 * Turns `hotreload run` arguments into a checked configuration. Options and
 * Deno flags may come before or after the entry, in any order; app arguments
 * only after `--`. Argument parsing proper is `node:util`'s parseArgs.
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { DENO_LONG_FLAGS, denoFlagArity } from "../config/deno_flags.ts";
import { nearest } from "../config/nearest.ts";
import { UsageError } from "../errors.ts";
import {
  CLOSE_WINDOW_MS,
  CLOSE_WINDOW_WATCHING_MS,
  findSetting,
  type PlainSettings,
  RESOLVED_KEYS,
  type RunConfig,
  type SettingFlag,
  settingKey,
  SETTINGS,
  type SettingValue,
  type WatchConfig,
} from "../config/settings.ts";
import { loadConfig, NAME, type ProcessConfig, processDefaults } from "../config/mod.ts";
import { entryProblem } from "../config/validator.ts";
import { MAX_PROCESS_INSTANCES } from "../config/limits.ts";

const HINT = 'see "hotreload run --help"';
const RESOLVED = new Set<string>(RESOLVED_KEYS);

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
    const option = findSetting(token);
    if (option) {
      const attached = token.startsWith("--") ? token.includes("=") : token.length > 2;
      if (option.value !== undefined && !attached) {
        if (i + 1 >= argv.length) throw new UsageError(`${token} needs a value (${option.value})`);
        // Attached, so that a value such as "-1" reaches our range check, not
        // parseArgs's "ambiguous argument" complaint.
        ours.push(`--${option.flag}=${argv[++i]}`);
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
    if (arity === undefined) throw unknownOption(token);
    denoFlags.push(token);
    if (arity === "required" && !token.includes("=") && !/^-[A-Za-z].+/.test(token)) {
      if (i + 1 >= argv.length) throw new UsageError(`Deno flag ${token} needs a value`);
      denoFlags.push(argv[++i]);
    }
  }
  return { entry, ours, denoFlags, appArgs };
}

/** `unknown option --wrokers: … did you mean --workers?`, from hotreload's options and Deno's flags. */
function unknownOption(token: string): UsageError {
  const option = token.split("=")[0];
  const near = option.startsWith("--")
    ? nearest(option.slice(2), [...SETTINGS.map((s) => s.flag), ...DENO_LONG_FLAGS])
    : undefined;
  return new UsageError(
    `unknown option ${option}: it is neither a hotreload option nor a Deno flag; ` +
      (near ? `did you mean --${near}?` : HINT),
  );
}

function defaultName(entry: string): string {
  const base = entry.split("/").pop()!.replace(/\.[^.]+$/, "");
  return base.replace(/[^A-Za-z0-9._-]/g, "_") || "app";
}

function checkEntry(entry: string | undefined, cwd: string, what = "entry"): string {
  if (entry === undefined) {
    throw new UsageError('missing entry: "hotreload run <entry.ts> [options]"; ' + HINT);
  }
  const problem = entryProblem(entry, cwd);
  if (problem === "flag") {
    throw new UsageError(`${what} "${entry}" looks like a flag; an entry is a path or URL`);
  }
  if (problem === "not found") {
    throw new UsageError(`${what} file not found: ${entry} (in ${cwd}); check the path`);
  }
  if (problem) throw new UsageError(`${what} ${entry} is not a file; give a main module`);
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

/** A setting's value: the flag's, else the file's, else the default. */
type SettingOf = <F extends SettingFlag>(flag: F) => SettingValue<F>;
// deno-lint-ignore no-explicit-any
type FlagValues = Record<string, any>;

/** What to watch, or false: --watch, --ext, --ignore, --poll... over the file's. */
function watchConfig(
  values: FlagValues,
  file: Record<string, unknown>,
  setting: SettingOf,
): WatchConfig | false {
  // --poll is checked even when not watching.
  const pollMs = setting("poll");
  const watchOff = values["no-watch"] || (values.watch === undefined && file.watch === false);
  if (watchOff) return false;
  const noPoll = values["no-poll"] || pollMs === false;
  return {
    paths: values.watch ?? (Array.isArray(file.watch) ? file.watch : []),
    extensions: setting("ext"),
    ignore: values.ignore ?? file.ignore ?? [],
    gitignore: values["no-gitignore"] ? false : (file.gitignore as boolean | undefined) ?? true,
    debounceMs: setting("debounce"),
    poll: typeof pollMs === "number"
      ? { mode: "force", intervalMs: pollMs }
      : { mode: noPoll ? "never" : "auto" },
  };
}

/** The file's custom processes and --process's: one with the same name replaces the file's. */
function mergeProcesses(
  fromFile: ProcessConfig[] | undefined,
  values: FlagValues,
  cwd: string,
): ProcessConfig[] {
  const flagProcesses = parseProcessFlags(values.process, cwd);
  const processes = [
    ...(fromFile ?? []).filter((p) => !flagProcesses.some((f) => f.name === p.name)),
    ...flagProcesses,
  ];
  const instances = processes.reduce((n, p) => n + p.count, 0);
  if (instances > MAX_PROCESS_INSTANCES) {
    throw new UsageError(
      `${instances} custom-process instances in all; at most ${MAX_PROCESS_INSTANCES} are allowed`,
    );
  }
  return processes;
}

/** Parses and validates `hotreload run` arguments, on top of the config file. */
export function parseRunArgs(argv: string[], cwd: string): RunConfig {
  const split = splitRunArgv(argv);
  const options = Object.fromEntries(
    SETTINGS.map((s) => [s.flag, {
      type: s.value ? "string" as const : "boolean" as const,
      multiple: s.multiple ?? false,
      ...(s.short ? { short: s.short } : {}),
    }]),
  );
  let values: FlagValues;
  try {
    values = parseArgs({ args: split.ours, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message}; ${HINT}`);
  }
  if (values.help) {
    return { help: true } as RunConfig;
  }
  // Flags > config file > defaults.
  const file = loadConfig(cwd, denoConfigFile(split.denoFlags)).config as Record<string, unknown>;
  // The flag's value (parsed), else the file's (checked), else the default: each as the table types it.
  const setting: SettingOf = <F extends SettingFlag>(flag: F): SettingValue<F> => {
    const s = SETTINGS.find((candidate) => candidate.flag === flag)!;
    if (values[flag] !== undefined && s.parse) return s.parse(values[flag]) as SettingValue<F>;
    return (file[settingKey(s)!] ?? s.default) as SettingValue<F>;
  };
  const entry = checkEntry(split.entry ?? file.entry as string | undefined, cwd);
  if (values.poll !== undefined && values["no-poll"]) {
    throw new UsageError("--poll and --no-poll contradict each other; keep one");
  }
  const watch = watchConfig(values, file, setting);
  const processes = mergeProcesses(file.processes as ProcessConfig[] | undefined, values, cwd);
  const workers = setting("workers");
  const workerCount = workers === "auto" ? navigator.hardwareConcurrency : workers;
  const spares = setting("spares");
  // `--check` type-checks when a child starts; a spare starts before the code it will run.
  // Deno flags from the file come first; the command line's add to them.
  const denoFlags = [...(file.denoFlags as string[] ?? []), ...split.denoFlags];
  const checking = denoFlags.some((flag) => flag === "--check" || flag.startsWith("--check="));
  // Every setting that needs no resolving, under its config key.
  const plain = Object.fromEntries(
    SETTINGS.flatMap((s) => {
      const key = settingKey(s);
      return key && !RESOLVED.has(key) ? [[key, setting(s.flag as SettingFlag)]] : [];
    }),
  );
  const closeWindow = setting("close-window");
  return {
    ...plain as PlainSettings,
    entry,
    cwd,
    name: setting("name") ?? defaultName(entry),
    workers: workerCount,
    spares: checking ? 0 : spares === "auto" ? (watch ? workerCount : 0) : spares,
    oneStepSwitch: setting("switch") === "all" || (setting("switch") === "auto" && watch !== false),
    closeWindow: Math.min(
      closeWindow === "auto" ? (watch ? CLOSE_WINDOW_WATCHING_MS : CLOSE_WINDOW_MS) : closeWindow,
      setting("grace"),
    ),
    denoFlags,
    appArgs: split.appArgs.length > 0 ? split.appArgs : file.args as string[] ?? [],
    watch,
    workerDirs: ((values["worker-dir"] ?? file.workerDirs ?? []) as string[]).map((dir) =>
      resolve(cwd, dir)
    ),
    processes,
    takeover: values.takeover === true,
    detach: values.detach === true,
    sparesFollow: !checking && spares === "auto" && watch !== false,
    help: false,
  };
}
