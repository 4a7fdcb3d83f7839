/**
 * Checks values read from a config file, with one-line errors that name the
 * file, the key path and what is expected (and suggest the nearest known key
 * for a typo). Also the patterns names, hosts and entries must match.
 */
import { resolve } from "node:path";
import { denoFlagArity } from "./deno_flags.ts";
import { UsageError } from "../errors.ts";
import { MAX_MS, NAME, NAME_RULE } from "./limits.ts";
import { nearest } from "./nearest.ts";
import type { ProcessConfig } from "./mod.ts";

/** An IPv4 or IPv6 address or a host name: what `--host` may be. */
export const HOST = /^(?:[A-Za-z0-9.-]{1,253}|[0-9A-Fa-f:.]{2,45})$/;
/** Entries that are URLs, not files (not checked on disk). */
export const URL_ENTRY = /^(https?|jsr|npm):/;

/** One check of a config value: returns the value or throws a UsageError. */
export type Check = (v: Validator, value: unknown, path: string) => unknown;

/** Validates the values of one config file. */
export class Validator {
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
    const near = nearest(name, known);
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
    const problem = entryProblem(entry, this.cwd);
    if (problem === "flag") {
      this.error(`${this.where(path)} "${entry}" looks like a flag; an entry is a path or URL`);
    }
    if (problem) this.error(`${this.where(path)} "${entry}" ${problem}`);
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

  /** `checks` holds each key's check; `defaults` the values a process starts from. */
  processes(
    x: unknown,
    path: string,
    checks: Record<string, Check>,
    defaults: () => Record<string, unknown>,
  ): ProcessConfig[] {
    const seen = new Set<string>();
    return this.list(x, path, "an array of process objects", (item, at) => {
      if (!isObject(item)) this.fail(at, 'an object with "name" and "entry"', item);
      const process: Record<string, unknown> = defaults();
      for (const [name, value] of Object.entries(item)) {
        if (!Object.hasOwn(checks, name)) this.unknownKey(name, at, Object.keys(checks));
        process[name] = checks[name](this, value, `${at}.${name}`);
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

/** What is wrong with an entry: a flag's shape, not found, not a file; URLs are not checked. */
export function entryProblem(
  entry: string,
  cwd: string,
): "flag" | "not found" | "is not a file" | undefined {
  if (entry.startsWith("-")) return "flag";
  if (URL_ENTRY.test(entry)) return undefined;
  try {
    return Deno.statSync(resolve(cwd, entry)).isFile ? undefined : "is not a file";
  } catch {
    return "not found";
  }
}

export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A value as shown after "got": JSON for scalars, its kind for arrays and objects. */
export function describe(x: unknown): string {
  if (Array.isArray(x)) return "an array";
  if (typeof x === "object" && x !== null) return "an object";
  const json = JSON.stringify(x) ?? String(x);
  return json.length > 60 ? `${json.slice(0, 56)}..."` : json;
}
