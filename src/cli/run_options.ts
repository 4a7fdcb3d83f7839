/**
 * The options of `hotreload run`, declared once: the parser, the help text and
 * the README check all read this table.
 */

/** One option of `hotreload run`. */
export interface OptionSpec {
  name: string;
  short?: string;
  type: "string" | "boolean";
  multiple?: boolean;
  /** Placeholder for the value in help, e.g. `<n|auto>`. */
  value?: string;
  help: string;
}

/** Every option `hotreload run` accepts, in help order. */
export const RUN_OPTIONS: readonly OptionSpec[] = [
  {
    name: "workers",
    short: "w",
    type: "string",
    value: "<n|auto>",
    help: "number of worker processes (default 1; auto = one per CPU)",
  },
  {
    name: "port",
    short: "p",
    type: "string",
    value: "<port>",
    help: "port the workers share; exported as PORT and used by a Deno.serve that names none",
  },
  {
    name: "host",
    type: "string",
    value: "<address>",
    help:
      "address the workers bind when the app names none (default: the runtime's, all); exported as HOST",
  },
  {
    name: "grace",
    type: "string",
    value: "<ms>",
    help: "how long a draining worker may finish its requests before it is killed (default 5000)",
  },
  {
    name: "ready-timeout",
    type: "string",
    value: "<ms>",
    help: "how long a new worker may take to become ready (default 10000)",
  },
  {
    name: "reload-batch",
    type: "string",
    value: "<n>",
    help: "workers replaced at once during a reload, after the first (default 1)",
  },
  {
    name: "name",
    type: "string",
    value: "<name>",
    help: "instance name for stop/reload (default: the entry's base name)",
  },
  {
    name: "process",
    type: "string",
    multiple: true,
    value: "<name=entry>",
    help:
      "run a custom process beside the workers (restarted on exit, reloaded with the code); repeatable",
  },
  {
    name: "watch",
    type: "string",
    multiple: true,
    value: "<path>",
    help: "file or directory to watch; repeatable (default: the current directory)",
  },
  {
    name: "no-watch",
    type: "boolean",
    help: "do not watch files; reload only on SIGHUP or `reload`",
  },
  {
    name: "ext",
    type: "string",
    value: "<list>",
    help: "extensions that trigger a reload (default ts,tsx,js,jsx,mjs,cjs,json,jsonc)",
  },
  {
    name: "ignore",
    type: "string",
    multiple: true,
    value: "<glob>",
    help: "gitignore-style glob of paths to ignore; repeatable",
  },
  { name: "no-gitignore", type: "boolean", help: "do not read .gitignore files" },
  {
    name: "poll",
    type: "string",
    value: "<ms>",
    help: "watch by polling at this interval instead of file events",
  },
  { name: "no-poll", type: "boolean", help: "never fall back to polling" },
  {
    name: "debounce",
    type: "string",
    value: "<ms>",
    help: "quiet time that ends a batch of changes (default 50)",
  },
  {
    name: "max-requests",
    type: "string",
    value: "<n>",
    help: "replace a worker (rolling, ready first) after it served this many requests",
  },
  {
    name: "max-requests-jitter",
    type: "string",
    value: "<n>",
    help: "add 0..n to each worker's --max-requests, so workers do not recycle together",
  },
  {
    name: "max-memory",
    type: "string",
    value: "<MB>",
    help: "replace a worker whose memory (RSS) stays above this many megabytes",
  },
  {
    name: "memory-check-interval",
    type: "string",
    value: "<ms>",
    help: "how often the workers' memory is sampled for --max-memory (default 5000)",
  },
  {
    name: "log-format",
    type: "string",
    value: "<pretty|json>",
    help: "hotreload's log: lines for people (default) or one JSON object per line",
  },
  {
    name: "deno",
    type: "string",
    value: "<path>",
    help: "deno executable for the workers (default: $HOTRELOAD_DENO, else this deno, else PATH)",
  },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

/** Finds the option a command-line token names (`--port`, `--port=80`, `-p`, `-p80`). */
export function findRunOption(token: string): OptionSpec | undefined {
  if (token.startsWith("--")) {
    const name = token.slice(2).split("=")[0];
    return RUN_OPTIONS.find((option) => option.name === name);
  }
  return RUN_OPTIONS.find((option) => option.short !== undefined && token[1] === option.short);
}
