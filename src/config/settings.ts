/**
 * Every setting of `hotreload run`, declared once: its flag(s), config key,
 * type, default, bounds and help line. The command-line parser, the config
 * file's validation, the defaults, `run --help` and the README's option table
 * (checked by tests/docs_test.ts) all derive from this table; adding an
 * option means adding one entry. gunicorn's `config.py` is the model.
 */
import { UsageError } from "../errors.ts";
import { MAX_MS, NAME, NAME_RULE } from "./limits.ts";
import { type Check, HOST } from "./validator.ts";
import {
  countOrAuto,
  matching,
  ms,
  oneOf,
  orAuto,
  parseMetrics,
  type Setting,
  whole,
} from "./setting_rules.ts";
import type { ProcessConfig } from "./mod.ts";
import {
  DEFAULT_EVENTS_DEBOUNCE_MS,
  DEFAULT_EXTENSIONS,
  DEFAULT_POLL_DEBOUNCE_MS,
} from "../watch/defaults.ts";

export type { Setting };

/**
 * How long a worker leaving service keeps its idle keep-alive connections
 * after the last request reached it (each next request is sent on to new
 * code and answered with `Connection: close`; runtime/forward.ts) before it
 * closes them. Closing an idle connection races a request the client may
 * be sending on it; a client whose pool drops idle connections sooner has
 * closed its own by then: Node's http.globalAgent after 5 s, undici (Node's
 * fetch) after 4 s. While watching, old workers of quick edits should not
 * pile up, and the clients are a developer's.
 */
export const CLOSE_WINDOW_MS = 5000;
/** --close-window auto while watching: see {@link CLOSE_WINDOW_MS}. */
export const CLOSE_WINDOW_WATCHING_MS = 1000;

/** Every option of `hotreload run`, in help order (`as const`: config types derive from it). */
const TABLE = [
  {
    flag: "workers",
    short: "w",
    help: "number of worker processes (auto = one per CPU)",
    default: 1,
    resolved: true,
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
    help: "address the workers bind when the app names none (default: all); exported as HOST",
    ...matching(
      "host",
      "<address>",
      (raw) => HOST.test(raw),
      "an IP address or host name such as 127.0.0.1 or ::1",
      "an IP address or host name such as 127.0.0.1 or ::1",
    ),
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
    help: "a new worker is ready only once GET <path>, answered by that very worker, returns 2xx",
    ...matching(
      "ready-path",
      "<path>",
      (raw) => /^\/\S*$/.test(raw),
      'a path starting with "/"',
      'a path such as "/healthz"',
    ),
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
    resolved: true,
    ...countOrAuto("spares", 0),
  },
  {
    flag: "switch",
    help: "all: a reload starts every new worker together (steered, the first alone until it " +
      "listens, 20 ms at most), and every old worker leaves service when the first new one is " +
      "ready (the others join as they become ready); rolling: one new worker first, then " +
      "--reload-batch at a time (auto: all while watching, else rolling)",
    default: "auto",
    resolved: true,
    ...oneOf("switch", ["all", "rolling", "auto"] as const),
  },
  {
    flag: "close-window",
    help: "how long a worker leaving service keeps its idle keep-alive connections after the " +
      "last request reached it (each next request goes on to new code, answered with " +
      "Connection: close) before it closes them; at a stop, 250 at most " +
      `(auto: ${CLOSE_WINDOW_WATCHING_MS} while watching, else ${CLOSE_WINDOW_MS})`,
    default: "auto",
    resolved: true,
    ...orAuto(ms("close-window", 0)),
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
    flag: "no-rebalance",
    key: "rebalance",
    help: "do not spread keep-alive clients over the workers (by default, while the workers' " +
      "counts of lasting connections differ by more than one, those above the mean let one go at a " +
      "time: its next answer says Connection: close, and the client reconnects; never with " +
      "--sticky)",
    default: true,
    parse: () => false,
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
    help: "instance name for the control commands (default: the entry's base name)",
    ...matching("name", "<name>", (raw) => NAME.test(raw), NAME_RULE, NAME_RULE),
    resolved: true,
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
    resolved: true,
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
    resolved: true,
    check: (v, x, p) => v.list(x, p, "an array of paths", (y, q) => v.text(y, q, "a path")),
  },
  {
    flag: "ext",
    value: "<list>",
    help: `extensions that trigger a reload (default ${DEFAULT_EXTENSIONS.join(",")})`,
    resolved: true,
    parse: (raw) => raw.split(",").map((e) => e.trim().replace(/^\./, "")).filter(Boolean),
    check: (v, x, p) => v.list(x, p, 'an array of extensions such as ["ts", "tsx"]', v.extension),
  },
  {
    flag: "ignore",
    value: "<glob>",
    multiple: true,
    help: "gitignore-style glob of paths to ignore; repeatable",
    resolved: true,
    check: (v, x, p) =>
      v.list(x, p, "an array of gitignore-style globs", (y, q) => v.text(y, q, "a glob")),
  },
  {
    flag: "no-gitignore",
    key: "gitignore",
    help: "do not read .gitignore files",
    resolved: true,
    check: (v, x, p) => v.bool(x, p),
  },
  {
    flag: "poll",
    value: "<ms>",
    help: "watch by polling at this interval instead of file events",
    resolved: true,
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
    help: "quiet time that ends a batch of changes " +
      `(default ${DEFAULT_EVENTS_DEBOUNCE_MS} with file events, 0.4 of it once every written file ` +
      `was closed; ${DEFAULT_POLL_DEBOUNCE_MS} when polling)`,
    resolved: true,
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

/** The config keys of the settings marked `resolved` (see {@link Setting.resolved}). */
type ResolvedKey = KeyOf<Extract<Entry, { resolved: true }>>;

/** Settings that RunConfig holds resolved ("auto", the entry's name) or gathers into `watch`. */
export const RESOLVED_KEYS = SETTINGS.flatMap((setting) =>
  setting.resolved ? [settingKey(setting) as ResolvedKey] : []
);

/** The settings RunConfig holds as given (flag over file over default), under their config keys. */
export type PlainSettings = Omit<Merged, ResolvedKey>;

/** A flag of `hotreload run` that sets a config key. */
export type SettingFlag = Extract<Entry, { check: unknown }>["flag"];

/** What a setting's flag or config key holds once checked (as its check returns it). */
export type SettingValue<F extends SettingFlag> = ValueOf<Extract<Entry, { flag: F }>>;

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
export type RunConfig = PlainSettings & {
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
  // A `no-` flag's default is that of its key, which it turns off: its help says what that is.
  return setting.default === undefined || setting.flag.startsWith("no-")
    ? setting.help
    : `${setting.help} (default ${setting.default})`;
}

/** The README's option table, as markdown rows (tests/docs_test.ts keeps the README equal to it). */
export function optionRows(): string[] {
  return SETTINGS.map((setting) =>
    `| \`${flagText(setting).replaceAll("|", "\\|")}\` | ${helpText(setting)} |`
  );
}
