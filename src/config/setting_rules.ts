/**
 * What a run setting is ({@link Setting}), and the rules its type gives it:
 * each helper states a type's rule once, as the flag's `parse` and the
 * config file's `check` together, with one range and one wording.
 * settings.ts declares the settings with them.
 */
import { UsageError } from "../errors.ts";
import { MAX_MS, MAX_WORKERS } from "./limits.ts";
import { type Check, HOST, type Validator } from "./validator.ts";

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
  /**
   * RunConfig holds it resolved ("auto", the entry's name) or gathered into
   * `watch`, not as given: the parser resolves it by hand (RESOLVED_KEYS).
   */
  resolved?: true;
}

/** A whole number from `min` to `max`. */
export function whole(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
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
export function ms(flag: string, min: number) {
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
export function countOrAuto(flag: string, min: number) {
  return {
    value: "<n|auto>",
    parse: (raw: string) => raw === "auto" ? "auto" : whole(flag, min, MAX_WORKERS).parse(raw),
    check: (v: Validator, x: unknown, p: string) =>
      x === "auto"
        ? "auto" as const
        : v.whole(x, p, min, MAX_WORKERS, `a whole number from ${min} to ${MAX_WORKERS} or "auto"`),
  };
}

/** A string that passes `test`: `rule` says what it must be on the command line, `expected` in a file. */
export function matching(
  flag: string,
  value: string,
  test: (raw: string) => boolean,
  rule: string,
  expected: string,
) {
  return {
    value,
    parse(raw: string): string {
      if (!test(raw)) throw new UsageError(`--${flag} must be ${rule} (got "${raw}")`);
      return raw;
    },
    check: (v: Validator, x: unknown, p: string) =>
      typeof x === "string" && test(x) ? x : v.fail(p, expected, x),
  };
}

/** `base`, or "auto". */
export function orAuto<T>(base: {
  value: string;
  parse(raw: string): T;
  check(v: Validator, x: unknown, p: string): T;
}) {
  return {
    value: base.value.replace(/>$/, "|auto>"),
    parse: (raw: string): T | "auto" => raw === "auto" ? "auto" : base.parse(raw),
    check: (v: Validator, x: unknown, p: string): T | "auto" =>
      x === "auto" ? "auto" : base.check(v, x, p),
  };
}

export function oneOf<T extends string>(flag: string, values: readonly T[]) {
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

/** `9090`, `0.0.0.0:9090`, `[::1]:9090` → where --metrics serves (127.0.0.1 unless named). */
export function parseMetrics(raw: string, what: string): { hostname: string; port: number } {
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
