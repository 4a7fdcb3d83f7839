/**
 * How a slot's failures are reported: each distinct error once, with a
 * summary and, for a missing permission, the flag to add; the same error
 * again is collapsed into a count (`crashed again, same error (×4)`), shown
 * only at powers of two, so a crash loop writes a bounded number of lines.
 */

/** The first line matching one of Deno's error shapes, and a location in the user's code. */
const ERROR_LINE =
  /^(?:error: )?(?:Uncaught (?:\(in promise\) )?)?([A-Za-z]*Error|NotCapable)\b:?\s*(.*)$/;
const PARSE_ERROR =
  /^error: The module's source code could not be parsed: (.*?)(?: at (file:\S+))?$/;
const LOCATION = /(?:at |\()?(file:\/\/\/[^\s)]+?):(\d+)(?::\d+)?\)?$/;
const PERMISSION =
  /Requires (\w+) access(?: to "([^"]*)")?, run again with the (--allow-[\w-]+) flag/;

/** `SyntaxError in main.ts:4`, `TypeError: boom (main.ts:1)`, or the first error line. */
export function summarizeError(lines: string[], cwd: string): string {
  const relative = (url: string) => {
    const path = decodeURIComponent(new URL(url).pathname);
    return path.startsWith(`${cwd}/`) ? path.slice(cwd.length + 1) : path;
  };
  // The first location outside hotreload's own runtime and Deno's internals.
  const where = lines
    .map((line) => line.trim().match(LOCATION))
    .find((m) => m && !m[1].includes("/src/runtime/"));
  const at = where ? `${relative(where[1])}:${where[2]}` : undefined;
  for (const raw of lines) {
    const line = raw.trim();
    const parse = line.match(PARSE_ERROR);
    if (parse) return `SyntaxError${at ? ` in ${at}` : ""}: ${parse[1]}`.slice(0, 200);
    const error = line.match(ERROR_LINE);
    if (error) {
      const name = error[1];
      if (name === "SyntaxError" && at) return `SyntaxError in ${at}`;
      return `${name}${error[2] ? `: ${error[2]}` : ""}${at ? ` (${at})` : ""}`.slice(0, 200);
    }
    if (line.startsWith("error: ")) return `${line.slice(7)}${at ? ` (${at})` : ""}`.slice(0, 200);
  }
  return lines.at(-1)?.trim().slice(0, 200) ?? "no output";
}

/** The flag a missing permission calls for, as one line, or undefined. */
export function permissionHint(lines: string[]): string | undefined {
  for (const line of lines) {
    const m = line.match(PERMISSION);
    if (!m) continue;
    const scoped = m[2] ? ` (or ${m[3]}=${m[2]})` : "";
    return `the app needs ${m[1]} permission: add ${m[3]}${scoped} to the hotreload run command ` +
      `line (workers cannot prompt for permissions)`;
  }
  return undefined;
}

/** A new line with the flag a missing permission calls for, or nothing. */
export function hintLine(lines: string[]): string {
  const hint = permissionHint(lines);
  return hint ? `\n${hint}` : "";
}

/** A run of failures: the last one's signature and how many times in a row it came. */
interface Run {
  signature?: string;
  times: number;
}

/**
 * Remembers the last failure of one slot, to tell a new error from the same
 * one again. New code starts a fresh run; a worker started before the
 * reload (the slot's retry, just before a save) that fails with the old
 * run's error goes on counting the old run, so the error it repeats is not
 * shown again as if it were news. Any other error is the new run's: the
 * generation a worker was started with does not prove which code it read (a
 * save can land between its start and its reading the file).
 */
export class FailureMemory {
  #current: Run = { times: 0 };
  /** The run of code older than generation `before`, once new code arrived. */
  #older?: Run & { before: number };
  #last?: string;

  /**
   * Records a failure with these last lines, of a worker running `generation`;
   * returns how many times in a row its code failed the same way.
   */
  record(lines: string[], generation: number): number {
    // Pids, ports and timings differ from run to run; the error does not.
    const signature = lines.join("\n").replace(/\d+/g, "#");
    const older = this.#older;
    const run = older && generation < older.before && signature === older.signature
      ? older
      : this.#current;
    run.times = signature === run.signature ? run.times + 1 : 1;
    run.signature = signature;
    this.#last = signature;
    return run.times;
  }

  /** The last failure's signature; undefined from new code's arrival until its first failure. */
  get signature(): string | undefined {
    return this.#last;
  }

  /**
   * New code from `generation` on: its failures count afresh. Code that never
   * failed leaves the older run as it was: a worker of any older generation
   * that fails with that run's error continues its count (the error is not
   * news to the reader), whichever older generation it ran.
   */
  newCode(generation: number): void {
    // Saved twice before the old worker failed: the old run is still the one it continues.
    if (this.#current.times > 0 || !this.#older) {
      this.#older = { ...this.#current, before: generation };
    } else this.#older.before = generation;
    this.#current = { times: 0 };
    this.#last = undefined;
  }
}

/** True for 1, 2, 4, 8, ...: the repeats worth a line. */
export function worthReporting(times: number): boolean {
  return (times & (times - 1)) === 0;
}
