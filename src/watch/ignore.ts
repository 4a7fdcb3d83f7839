/**
 * The only module that touches the `ignore` npm package (gitignore-style
 * matching), so it can be swapped for `@std` later without touching callers.
 *
 * @module
 */
import ignoreLib from "ignore";

/** Outcome of testing one path against one rule set. */
export interface RuleResult {
  /** A rule matched and excludes the path. */
  ignored: boolean;
  /** A negated rule (`!pattern`) matched and re-includes the path. */
  unignored: boolean;
}

/** A compiled list of gitignore-style rules. */
export interface RuleSet {
  /**
   * Test a path relative to the directory the rules belong to, "/"-separated,
   * with a trailing "/" for a directory. Never pass a path that starts with
   * "../" or "/".
   */
  test(relPath: string): RuleResult;
}

/** Compile gitignore-style rules (the text of a .gitignore file, or a list of globs). */
export function compileRules(patterns: string | readonly string[]): RuleSet {
  const ig = ignoreLib().add(typeof patterns === "string" ? patterns : [...patterns]);
  return {
    test(relPath: string): RuleResult {
      const r = ig.test(relPath);
      return { ignored: r.ignored, unignored: r.unignored };
    },
  };
}
