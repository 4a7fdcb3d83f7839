/**
 * Every setting of `hotreload run`, declared once: its flag(s), config key,
 * type, default, bounds and help line. The command-line parser, the config
 * file's validation, the defaults, `run --help` and the README's option table
 * (checked by tests/docs_test.ts) all derive from this table; adding an
 * option means adding one entry. gunicorn's `config.py` is the model.
 */
import { UsageError } from "../errors.ts";
import { MAX_MS, MAX_WORKERS, NAME, NAME_RULE } from "./limits.ts";
import { type Check, HOST, type Validator } from "./validator.ts";
import type { ProcessConfig } from "./mod.ts";

/** One setting. */
export interface Setting {
  /** The flag without its dashes: `ready-timeout`. */
  flag: string;
  short?: string;
  /**
   * Placeholder of the flag's value in help (`<ms>`; the helpers below set
   * it from the type); none for a boolean flag.
   */
  value?: string;
  /** The flag may be repeated. */
  multiple?: boolean;
  /**
   * The config-file key this flag sets, when it is not the flag in camelCase
   * (`ready-timeout` → `readyTimeout`). Only a setting with a `check` has one.
   */
  key?: string;
  /** The help line, without the default. */
  help: string;
  /** The value when neither flag nor file sets one (shown in help). */
  default?: unknown;
  /** Turns the flag's text into the setting's value; throws a one-line UsageError. */
  parse?: (raw: string) => unknown;
  /** Checks the config file's value for `key`. */
  check?: Check;
}

/** A whole number from `min` to `max`. */
function whole(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
  return {
    value: "<n>",
    parse(raw: string): number {
      if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
        throw new UsageError(`--${flag} must be a whole number ${range} (got "${raw}")`);
      }
      return Number(raw);
    },
    check: (v: Validator, x: unknown, p: string) =>
      v.whole(x, p, min, max === Number.MAX_SAFE_INTEGER ? undefined : max),
  };
}

/** Whole milliseconds from `min` to one day (timers overflow beyond 2^31 - 1). */
function ms(flag: string, min: number) {
  return {
    value: "<ms>",
    parse(raw: string): number {
      if (/^\d+$/.test(raw) && Number(raw) > MAX_MS) {
        throw new UsageError(`--${flag} must be at most ${MAX_MS} ms (one day) (got "${raw}")`);
      }
      return whole(flag, min).parse(raw);
    },
    check: (v: Validator, x: unknown, p: string) => v.ms(x, p, min),
  };
}

/** A number of workers from `min` to MAX_WORKERS, or "auto". */
function countOrAuto(flag: string, min: number) {
  return {
    value: "<n|auto>",
    parse: (raw: string) => raw === "auto" ? "auto" : whole(flag, min, MAX_WORKERS).parse(raw),
    check: (v: Validator, x: unknown, p: string) =>
      x === "auto"
        ? "auto" as const
        : v.whole(x, p, min, MAX_WORKERS, `a whole number from ${min} to ${MAX_WORKERS} or "auto"`),
  };
}

function oneOf<T extends string>(flag: string, values: readonly T[]) {
  return {
    value: `<${values.join("|")}>`,
    parse(raw: string): T {
      if (!values.includes(raw as T)) {
        throw new UsageError(`--${flag} must be ${values.join(" or ")} (got "${raw}")`);
      }
      return raw as T;
    },
    check: (v: Validator, x: unknown, p: string) => v.oneOf(x, p, values),
  };
}

/** Every option of `hotreload run`, in help order (`as const`: config types derive from it). */
const TABLE = [
  {
    flag: "workers",
    short: "w",
    help: "number of worker processes (auto = one per CPU)",
    default: 1,
    ...countOrAuto("workers", 1),
  },
  {
    flag: "port",
    short: "p",
    help: "port the workers share; exported as PORT and used by a server that names none",
    ...whole("port", 1, 65535),
    value: "<port>",
  },
  {
    flag: "host",
    value: "<address>",
    help: "address the workers bind when the app names none (default: all); exported as HOST",
    parse(raw) {
      if (!HOST.test(raw)) {
        throw new UsageError(
          `--host must be an IP address or host name such as 127.0.0.1 or ::1 (got "${raw}")`,
        );
      }
      return raw;
    },
    check: (v, x, p) =>
      typeof x === "string" && HOST.test(x)
        ? x
        : v.fail(p, "an IP address or host name such as 127.0.0.1 or ::1", x),
  },
  {
    flag: "grace",
    help: "how long a draining worker may finish its requests before it is killed",
    default: 5000,
    ...ms("grace", 0),
  },
  {
    flag: "ready-timeout",
    help: "how long a new worker may take to become ready",
    default: 10_000,
    ...ms("ready-timeout", 1),
  },
  {
    flag: "settle",
    help: "a new worker that exits within this long after it became ready failed to start: " +
      "the reload is aborted and the old workers serve on, unless a one-step switch without " +
      "steering had drained them already (see the README, Broken code)",
    default: 1000,
    ...ms("settle", 0),
  },
  {
    flag: "ready-path",
    value: "<path>",
    help: "a new worker is ready only once GET <path>, answered by that very worker, returns 2xx",
    parse(raw) {
      if (!/^\/\S*$/.test(raw)) {
        throw new UsageError(`--ready-path must be a path starting with "/" (got "${raw}")`);
      }
      return raw;
    },
    check: (v, x, p) =>
      typeof x === "string" && /^\/\S*$/.test(x) ? x : v.fail(p, 'a path such as "/healthz"', x),
  },
  {
    flag: "timeout",
    help: "replace a worker (restart a process) whose event loop is blocked this long; 0: never",
    default: 30_000,
    ...ms("timeout", 0),
  },
  {
    flag: "spares",
    help:
      "warm spare workers, released as the next workers (auto: one per worker while watching, else none)",
    default: "auto",
    ...countOrAuto("spares", 0),
  },
  {
    flag: "switch",
    help:
      "all: a reload starts every new worker at once, and every old worker leaves service when " +
      "the first new one is ready (the others join as they become ready); rolling: one new " +
      "worker first, then --reload-batch at a time (auto: all while watching, else rolling)",
    default: "auto",
    ...oneOf("switch", ["all", "rolling", "auto"] as const),
  },
  {
    flag: "close-window",
    value: "<ms|auto>",
    help: "how long a worker leaving service keeps its idle keep-alive connections after the " +
      "last request reached it (each next request goes on to new code, answered with " +
      "Connection: close) before it closes them; at a stop, 250 at most " +
      "(auto: 1000 while watching, else 5000)",
    default: "auto",
    parse: (raw) => raw === "auto" ? "auto" : ms("close-window", 0).parse(raw),
    check: (v, x, p) => x === "auto" ? x : v.ms(x, p, 0),
  },
  {
    flag: "handover",
    help: "who takes new connections while a worker drains: ebpf steers them to the serving " +
      "workers (needs CAP_BPF and CAP_NET_ADMIN); kernel needs tcp_migrate_req=1; " +
      "none leaves it to the kernel (auto: the first that works)",
    default: "auto",
    ...oneOf("handover", ["auto", "ebpf", "kernel", "none"] as const),
  },
  {
    flag: "orphan-grace",
    help: "how long workers whose supervisor died keep serving, waiting for a successor (a new " +
      "`run` of the same name adopts them, then drains them), before they drain and exit",
    default: 1000,
    ...ms("orphan-grace", 0),
  },
  {
    flag: "takeover",
    help: "take over the running instance of the same name (any version and settings): start " +
      "the workers, and once they have settled, stop the old instance gracefully; if they " +
      "cannot start, the old one keeps serving and this run exits 1",
  },
  {
    flag: "detach",
    help: "start in the background (its own session, stdin closed) and return once the workers " +
      "are ready, printing the instance's name, pid and port; its output goes to " +
      ".hotreload/<name>/output.log (see hotreload logs); exits 1 with the error if they never are",
  },
  {
    flag: "sticky",
    help: "send every connection from one client address to the same worker while it serves, " +
      "for long-polling transports (socket.io); needs steering (--handover ebpf)",
    default: false,
    parse: () => true,
    check: (v, x, p) => v.bool(x, p),
  },
  {
    flag: "reload-batch",
    help: "workers replaced at once during a reload, after the first",
    default: 1,
    ...whole("reload-batch", 1),
  },
  {
    flag: "name",
    value: "<name>",
    help: "instance name for the control commands (default: the entry's base name)",
    parse(raw) {
      if (!NAME.test(raw)) throw new UsageError(`--name must be ${NAME_RULE} (got "${raw}")`);
      return raw;
    },
    check: (v, x, p) => v.name(x, p),
  },
  {
    flag: "process",
    value: "<name=entry>",
    multiple: true,
    help:
      "run a custom process beside the workers (restarted on exit, reloaded with the code); repeatable",
  },
  {
    flag: "watch",
    value: "<path>",
    multiple: true,
    help: "file or directory to watch, a named directory whatever a .gitignore says; repeatable " +
      "(default: the current directory)",
    check: (v, x, p) =>
      typeof x === "boolean"
        ? x
        : v.list(x, p, "true, false or an array of paths", (y, q) => v.text(y, q, "a path")),
  },
  { flag: "no-watch", help: "do not watch files; reload only on SIGHUP or `reload`" },
  {
    flag: "worker-dir",
    key: "workerDirs",
    value: "<path>",
    multiple: true,
    help: "a directory whose files the workers load (a computed import() their module graph " +
      "cannot see): watched whatever a .gitignore says, and a change there reloads the workers; " +
      "repeatable",
    check: (v, x, p) => v.list(x, p, "an array of paths", (y, q) => v.text(y, q, "a path")),
  },
  {
    flag: "ext",
    value: "<list>",
    help: "extensions that trigger a reload (default ts,tsx,js,jsx,mjs,cjs,json,jsonc)",
    parse: (raw) => raw.split(",").map((e) => e.trim().replace(/^\./, "")).filter(Boolean),
    check: (v, x, p) => v.list(x, p, 'an array of extensions such as ["ts", "tsx"]', v.extension),
  },
  {
    flag: "ignore",
    value: "<glob>",
    multiple: true,
    help: "gitignore-style glob of paths to ignore; repeatable",
    check: (v, x, p) =>
      v.list(x, p, "an array of gitignore-style globs", (y, q) => v.text(y, q, "a glob")),
  },
  {
    flag: "no-gitignore",
    key: "gitignore",
    help: "do not read .gitignore files",
    check: (v, x, p) => v.bool(x, p),
  },
  {
    flag: "poll",
    value: "<ms>",
    help: "watch by polling at this interval instead of file events",
    parse: ms("poll", 10).parse,
    check: (v, x, p) =>
      x === false ? x : v.whole(
        x,
        p,
        10,
        MAX_MS,
        `a whole number of milliseconds from 10 to ${MAX_MS}, or false`,
      ),
  },
  { flag: "no-poll", help: "never fall back to polling" },
  {
    flag: "debounce",
    help: "quiet time that ends a batch of changes (default 20 with file events, 50 when polling)",
    ...ms("debounce", 0),
  },
  {
    flag: "max-requests",
    help: "replace a worker (rolling, ready first) after it served this many requests",
    ...whole("max-requests", 1),
  },
  {
    flag: "max-requests-jitter",
    help: "add 0..n to each worker's --max-requests, so workers do not recycle together",
    default: 0,
    ...whole("max-requests-jitter", 0),
  },
  {
    flag: "max-memory",
    value: "<MB>",
    help: "replace a worker whose memory (RSS) stays above this many megabytes",
    parse(raw) {
      if (!/^\d+(\.\d+)?$/.test(raw) || Number(raw) <= 0) {
        throw new UsageError(`--max-memory must be a number of megabytes above 0 (got "${raw}")`);
      }
      return Number(raw);
    },
    check: (v, x, p) =>
      typeof x === "number" && Number.isFinite(x) && x > 0
        ? x
        : v.fail(p, "a number of megabytes greater than 0", x),
  },
  {
    flag: "memory-check-interval",
    help: "how often the workers' memory is sampled for --max-memory",
    default: 5000,
    ...ms("memory-check-interval", 100),
  },
  {
    flag: "metrics",
    value: "<[host:]port>",
    help:
      "serve Prometheus metrics at /metrics on this port (host default 127.0.0.1; off by default)",
    parse: (raw) => parseMetrics(raw, "--metrics"),
    check: (v, x, p) => {
      if (typeof x !== "string" && typeof x !== "number") v.fail(p, '"[host:]port"', x);
      try {
        return parseMetrics(String(x), "metrics");
      } catch {
        v.fail(p, 'a port or "host:port" such as "9090" or "0.0.0.0:9090"', x);
      }
    },
  },
  {
    flag: "log-format",
    help: "hotreload's log: lines for people or one JSON object per line",
    default: "pretty",
    ...oneOf("log-format", ["pretty", "json"] as const),
  },
  {
    flag: "deno",
    value: "<path>",
    help: "deno executable for the workers (default: $HOTRELOAD_DENO, else this deno, else PATH)",
    parse: (raw) => raw,
    check: (v, x, p) => v.text(x, p, "the path of a deno executable"),
  },
  { flag: "help", short: "h", help: "show this help" },
] as const satisfies readonly Setting[];

/** The table, as the settings the parser, the file checks and the help walk. */
export const SETTINGS: readonly Setting[] = TABLE;

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}`
  : S;
type Entry = (typeof TABLE)[number];
type KeyOf<S extends Entry> = S extends { check: unknown }
  ? S extends { key: string } ? S["key"] : Camel<S["flag"]>
  : never;

type ValueOf<S> = S extends { check: (...args: never[]) => infer R } ? R : never;

/** What a config file may set of the run settings, each typed by its check. */
export type SettingValues = { [S in Entry as KeyOf<S>]?: ValueOf<S> };

type Defaulted = { [S in Entry as S extends { default: unknown } ? KeyOf<S> : never]: ValueOf<S> };
/** The settings merged: one with a default always has a value. */
type Merged = Omit<SettingValues, keyof Defaulted> & Defaulted;

/** Settings that RunConfig holds resolved ("auto", the entry's name) or gathers into `watch`. */
export const RESOLVED_KEYS = [
  "workers",
  "spares",
  "switch",
  "closeWindow",
  "name",
  "watch",
  "ext",
  "ignore",
  "gitignore",
  "poll",
  "debounce",
  "workerDirs",
] as const;

/** The config-file key a setting sets (see {@link Setting.key}); undefined for a flag-only one. */
export function settingKey(setting: Setting): string | undefined {
  if (!setting.check) return undefined;
  return setting.key ?? setting.flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * What `hotreload run` was asked to do, validated: every setting under its
 * config key, flags over the file over the defaults (the table's help says
 * what each means), with RESOLVED_KEYS resolved.
 */
export type RunConfig = Omit<Merged, (typeof RESOLVED_KEYS)[number]> & {
  /** The entry as given (relative to cwd, or absolute). */
  entry: string;
  cwd: string;
  name: string;
  workers: number;
  /** Warm spare workers (0 with --check, whose type check runs at spawn). */
  spares: number;
  /** A reload switches all new workers in together (--switch all, or auto while watching). */
  oneStepSwitch: boolean;
  /** At most --grace. */
  closeWindow: number;
  denoFlags: string[];
  appArgs: string[];
  watch: false | WatchConfig;
  /** --worker-dir: directories whose files belong to the workers' module graph (absolute). */
  workerDirs: string[];
  processes: ProcessConfig[];
  /** --takeover: start beside the running instance of this name, then replace it. */
  takeover: boolean;
  /** --detach (`hotreload start`): start the supervisor in the background, return once ready. */
  detach: boolean;
  /** --spares auto: the spares follow the number of workers (scale). */
  sparesFollow: boolean;
  help: boolean;
};

/** File watching settings (flags over the config file). */
export interface WatchConfig {
  paths: string[];
  extensions?: string[];
  ignore: string[];
  gitignore: boolean;
  /** undefined: the backend's own default (20 ms for file events, 50 when polling). */
  debounceMs?: number;
  poll: { mode: "auto" | "force" | "never"; intervalMs?: number };
}

/** `9090`, `0.0.0.0:9090`, `[::1]:9090` → where --metrics serves (127.0.0.1 unless named). */
function parseMetrics(raw: string, what: string): { hostname: string; port: number } {
  const m = raw.match(/^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/);
  const port = Number(m?.[2]);
  if (
    !m || port < 1 || port > 65535 ||
    (m[1] !== undefined && !HOST.test(m[1].replace(/^\[|\]$/g, "")))
  ) {
    throw new UsageError(
      `${what} must be a port or host:port such as 9090 or 0.0.0.0:9090 (got "${raw}")`,
    );
  }
  return { hostname: m[1]?.replace(/^\[|\]$/g, "") ?? "127.0.0.1", port };
}

/** The setting a command-line token names (`--port`, `--port=80`, `-p`, `-p80`). */
export function findSetting(token: string): Setting | undefined {
  if (token.startsWith("--")) {
    const name = token.slice(2).split("=")[0];
    return SETTINGS.find((setting) => setting.flag === name);
  }
  return SETTINGS.find((setting) => setting.short !== undefined && token[1] === setting.short);
}

/** The config-file checks of every key a flag sets. */
export function settingChecks(): Record<string, Check> {
  return Object.fromEntries(
    SETTINGS.flatMap((setting) => setting.check ? [[settingKey(setting), setting.check]] : []),
  );
}

/** A setting's flag as help and the README show it: `-w, --workers <n|auto>`. */
export function flagText(setting: Setting): string {
  const short = setting.short ? `-${setting.short}, ` : "";
  return `${short}--${setting.flag}${setting.value ? ` ${setting.value}` : ""}`;
}

/** A setting's help line with its default: `... (default 5000)`. */
export function helpText(setting: Setting): string {
  return setting.default === undefined
    ? setting.help
    : `${setting.help} (default ${setting.default})`;
}

/** The README's option table, as markdown rows (tests/docs_test.ts keeps the README equal to it). */
export function optionRows(): string[] {
  return SETTINGS.map((setting) =>
    `| \`${flagText(setting).replaceAll("|", "\\|")}\` | ${helpText(setting)} |`
  );
}
