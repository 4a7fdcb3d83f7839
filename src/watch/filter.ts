/**
 * Which paths count: built-in ignores, `--ext`, `--ignore` globs and
 * `.gitignore` files (the root one and nested ones), shared by both backends.
 *
 * All paths here are relative to the project root and "/"-separated; "" is
 * the root itself. Paths outside the root ("../...", from a `--watch` outside
 * the project) get the built-in ignores and the extension filter only.
 *
 * A directory the user named (`--watch build`, `--worker-dir build/server`)
 * is watched whatever a `.gitignore` says: build output is what such a name
 * is for, and a `.gitignore` lists it because it is not source, not because
 * a running app does not load it. So no `.gitignore` rule applies below a
 * named directory, nor to the directories on the way to it (they are entered;
 * their other files and subdirectories keep the rules). `--ignore` globs,
 * also the user's own words, still apply, and so do the built-in ignores.
 *
 * @module
 */
import { compileRules, type RuleSet } from "./ignore.ts";

/** Directory names never descended into, wherever they appear. */
const BUILTIN_DIRS: ReadonlySet<string> = new Set([".git", "node_modules", ".hotreload"]);

/**
 * Editor temp and backup names, ignored as files or directories: `*~`,
 * `.#*` (emacs locks), `4913` (vim's write probe), `*.tmp`, and vim swap
 * files `.name.swp` / `.swo` / ... / `.swa` plus the `.swpx` probe.
 */
const BUILTIN_NAME = /~$|^\.#|^4913$|\.tmp$|^\..+\.sw[a-px]x?$/;

/** Options for {@linkcode PathFilter}. */
export interface FilterOptions {
  /** Absolute project root; rule paths are relative to it. */
  root: string;
  /** Extensions without dots; "*" accepts every extension (and none). */
  extensions: readonly string[];
  /** Gitignore-style globs relative to the root (`--ignore`). */
  ignore?: readonly string[];
  /** Respect `.gitignore` files in the root and below (default true). */
  gitignore?: boolean;
  /** Files the user named with `--watch`: accepted whatever their name. */
  explicitFiles?: Iterable<string>;
  /** Directories the user named (`--watch`, `--worker-dir`): no `.gitignore` applies there. */
  namedDirs?: Iterable<string>;
  /** Reads a `.gitignore`; returns null when there is none (for tests). */
  readText?: (absPath: string) => string | null;
}

function defaultReadText(absPath: string): string | null {
  try {
    return Deno.readTextFileSync(absPath);
  } catch {
    return null;
  }
}

/** True when a file or directory name is one of the built-in ignores. */
export function isBuiltinIgnoredName(name: string): boolean {
  return BUILTIN_DIRS.has(name) || BUILTIN_NAME.test(name);
}

function baseName(rel: string): string {
  return rel.slice(rel.lastIndexOf("/") + 1);
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf("/");
  return i < 0 ? "" : rel.slice(0, i);
}

/** Decides, for a path relative to the root, whether it is watched. */
export class PathFilter {
  readonly #root: string;
  readonly #all: boolean;
  readonly #exts: ReadonlySet<string>;
  readonly #user: RuleSet | null;
  readonly #gitignore: boolean;
  readonly #explicit: ReadonlySet<string>;
  readonly #named: readonly string[];
  /** The named directories a `.gitignore` lists (build output), once asked for. */
  #builds?: string[];
  readonly #readText: (absPath: string) => string | null;
  #gitRules = new Map<string, RuleSet | null>();
  #dirCache = new Map<string, boolean>();

  constructor(options: FilterOptions) {
    this.#root = options.root.replace(/\/+$/, "") || "/";
    const exts = options.extensions.map((e) => e.replace(/^\.+/, "").toLowerCase());
    this.#all = exts.includes("*");
    this.#exts = new Set(exts.filter((e) => e !== ""));
    const globs = (options.ignore ?? []).map((g) => g.trim()).filter((g) => g !== "");
    this.#user = globs.length > 0 ? compileRules(globs) : null;
    this.#gitignore = options.gitignore ?? true;
    this.#explicit = new Set(options.explicitFiles ?? []);
    // The root is named by default, and paths outside it never see a rule: neither counts.
    this.#named = [...new Set(options.namedDirs ?? [])]
      .map((dir) => dir.replace(/\/+$/, ""))
      .filter((dir) => dir !== "" && dir !== "." && dir !== ".." && !dir.startsWith("../"));
    this.#readText = options.readText ?? defaultReadText;
  }

  /** Whether `.gitignore` files are read at all. */
  get usesGitignore(): boolean {
    return this.#gitignore;
  }

  /** True when a file name has one of the watched extensions. */
  hasWatchedExtension(name: string): boolean {
    if (this.#all) return true;
    const dot = name.lastIndexOf(".");
    if (dot <= 0) return false;
    return this.#exts.has(name.slice(dot + 1).toLowerCase());
  }

  /** Forget every cached `.gitignore` and decision (call when a `.gitignore` changed). */
  invalidate(): void {
    this.#gitRules.clear();
    this.#dirCache.clear();
    this.#builds = undefined;
  }

  /**
   * Full check for a directory: built-in names, `--ignore`, `.gitignore`,
   * and every ancestor. The root ("") and paths above it are never ignored.
   */
  ignoredDir(rel: string): boolean {
    if (rel === "" || rel === ".." || rel.endsWith("/..")) return false;
    const cached = this.#dirCache.get(rel);
    if (cached !== undefined) return cached;
    const parent = parentOf(rel);
    const result = this.ignoredDir(parent) || this.ignoredChildDir(parent, baseName(rel));
    this.#dirCache.set(rel, result);
    return result;
  }

  /** Check for a directory whose parent is already known not to be ignored. */
  ignoredChildDir(parentRel: string, name: string): boolean {
    if (isBuiltinIgnoredName(name)) return true;
    const rel = parentRel === "" ? name : `${parentRel}/${name}`;
    return this.#rulesIgnore(rel, true);
  }

  /** True for a file named on its own (an `--env-file`): watched whatever its name says. */
  isExplicit(rel: string): boolean {
    return this.#explicit.has(rel);
  }

  /** The files named on their own, relative to the root. */
  explicitFiles(): readonly string[] {
    return [...this.#explicit];
  }

  /** Full check for a file: ancestors, built-ins, extension, rules. */
  acceptsFile(rel: string): boolean {
    if (this.#explicit.has(rel)) return true;
    const parent = parentOf(rel);
    if (this.ignoredDir(parent)) return false;
    return this.acceptsChildFile(parent, baseName(rel));
  }

  /** Check for a file whose parent directory is already known not to be ignored. */
  acceptsChildFile(parentRel: string, name: string): boolean {
    const rel = parentRel === "" ? name : `${parentRel}/${name}`;
    if (this.#explicit.has(rel)) return true;
    if (isBuiltinIgnoredName(name) || !this.hasWatchedExtension(name)) return false;
    return !this.#rulesIgnore(rel, false);
  }

  /**
   * True when a path is ignored whatever it turns out to be (a file or a
   * directory): it or an ancestor has a built-in name or matches a rule.
   * Used to drop raw events early, before looking at the disk.
   */
  ignoredAnyway(rel: string): boolean {
    if (this.#explicit.has(rel)) return false;
    const name = baseName(rel);
    if (isBuiltinIgnoredName(name)) return true;
    const parent = parentOf(rel);
    return this.ignoredDir(parent) || this.#rulesIgnore(rel, false);
  }

  /**
   * The named directories a `.gitignore` would ignore (they are watched
   * anyway), and those an `--ignore` glob ignores (they are not): start-up
   * says so, since the user asked for both.
   */
  namedConflicts(): { gitignored: string[]; ignored: string[] } {
    const gitignored: string[] = [];
    const ignored: string[] = [];
    for (const dir of this.#named) {
      const chain = dir.split("/").map((_, i, parts) => parts.slice(0, i + 1).join("/"));
      if (chain.some((d) => this.#user?.test(`${d}/`).ignored)) ignored.push(dir);
      else if (this.#gitignore && chain.some((d) => this.#gitRulesIgnore(`${d}/`))) {
        gitignored.push(dir);
      }
    }
    return { gitignored, ignored };
  }

  /**
   * True for a path in a named directory that a `.gitignore` lists: build
   * output (what the user runs, and not source), written in bursts.
   */
  isBuildOutput(rel: string): boolean {
    this.#builds ??= this.namedConflicts().gitignored;
    return this.#builds.some((dir) => rel.startsWith(`${dir}/`));
  }

  /** True for a named directory, a path below one, or (`isDir`) a directory on the way to one. */
  #namedOrOnTheWay(rel: string, isDir: boolean): boolean {
    return this.#named.some((dir) =>
      rel === dir || rel.startsWith(`${dir}/`) || (isDir && dir.startsWith(`${rel}/`))
    );
  }

  #rulesIgnore(rel: string, isDir: boolean): boolean {
    if (rel.startsWith("../") || rel === "..") return false;
    const p = isDir ? `${rel}/` : rel;
    if (this.#user !== null && this.#user.test(p).ignored) return true;
    if (!this.#gitignore || this.#namedOrOnTheWay(rel, isDir)) return false;
    return this.#gitRulesIgnore(p);
  }

  /** Whether the `.gitignore` files ignore `p` (relative; a directory ends with "/"). */
  #gitRulesIgnore(p: string): boolean {
    let ignored = false;
    // Every directory from the root down to the parent may hold a .gitignore;
    // a deeper file's decision overrides a shallower one (as git does).
    let level = "";
    let rest = p;
    for (;;) {
      const rules = this.#rulesFor(level);
      if (rules !== null) {
        const r = rules.test(rest);
        if (r.ignored) ignored = true;
        else if (r.unignored) ignored = false;
      }
      const slash = rest.indexOf("/");
      if (slash < 0 || slash === rest.length - 1) break;
      const seg = rest.slice(0, slash);
      level = level === "" ? seg : `${level}/${seg}`;
      rest = rest.slice(slash + 1);
    }
    return ignored;
  }

  #rulesFor(dirRel: string): RuleSet | null {
    let rules = this.#gitRules.get(dirRel);
    if (rules === undefined) {
      const base = this.#root === "/" ? "" : this.#root;
      const text = this.#readText(
        dirRel === "" ? `${base}/.gitignore` : `${base}/${dirRel}/.gitignore`,
      );
      rules = text === null || text.trim() === "" ? null : compileRules(text);
      this.#gitRules.set(dirRel, rules);
    }
    return rules;
  }
}
