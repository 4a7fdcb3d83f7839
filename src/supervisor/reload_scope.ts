/**
 * What a batch of changed files reloads, decided file by file from the
 * module graphs, each decision by one named rule (logged with it):
 *
 * | rule               | when                                                           | reloads           |
 * | ------------------ | -------------------------------------------------------------- | ----------------- |
 * | `not-a-module`     | the file is not a JS/TS module (read at run time, a config)    | everything        |
 * | `named-dir`        | it is under a directory named for a kind (`--worker-dir`, a    | that kind         |
 * |                    | process's `watch`)                                             |                   |
 * | `no-graphs`        | no graph was ever computed (or none can be)                    | everything        |
 * | `graph`            | a kind's graph holds it, and that graph is current             | that kind         |
 * | `last-graph`       | a kind's last known graph holds it while it is computed again  | that kind         |
 * | `maybe-new-import` | a kind's graph is computed again (code it holds changed since) | that kind         |
 * |                    | and the file exists: that code may import it now               |                   |
 * | `wait-new`         | as above, but the file was just created: decided again later   | nothing yet       |
 * | `not-imported`     | no graph holds it and every graph is current                   | nothing           |
 * | `gone`             | no graph holds it and it no longer exists                      | nothing           |
 *
 * A graph is current until a change touches a file it holds (the code may
 * import something else now), and again once it has been computed since.
 * Until then it is the last known graph: still right about every file it
 * holds, unsure only about files it does not. `wait-new` is for tools that
 * create and remove a module around a build (Vite's
 * `vite.config.ts.timestamp-*.mjs`): gone when decided again, it reloads
 * nothing; still there, it is a `maybe-new-import`.
 *
 * @module
 */

/** A rule of the table above. */
export type Rule =
  | "not-a-module"
  | "named-dir"
  | "no-graphs"
  | "graph"
  | "last-graph"
  | "maybe-new-import"
  | "wait-new"
  | "not-imported"
  | "gone";

/** What one kind of child runs, as the decisions see it. */
export interface KindView {
  /** A custom process's name, or undefined for the workers. */
  process?: string;
  /** Canonical paths (and the paths as imported) of its modules; undefined: never computed. */
  files?: ReadonlySet<string>;
  /** Canonical directories whose files are its own (`--worker-dir`). */
  dirs: readonly string[];
  /** A change touched a file it holds since its graph was computed. */
  stale: boolean;
}

/** One changed file, with what the disk says of it now. */
export interface ChangedFile {
  /** As the watcher reported it (relative to the project, or absolute). */
  path: string;
  /** The forms to look up: its canonical path, and its absolute path as reported. */
  forms: readonly string[];
  /** A JS/TS module (by extension). */
  module: boolean;
  exists: boolean;
  /** Created in this batch, and not decided before (see `wait-new`). */
  fresh: boolean;
}

/** The rule that decided one file, and which kinds it reloads. */
export interface Decision {
  file: string;
  rule: Rule;
  /** "everything", or the kinds (undefined: the workers; else a process name). */
  reloads: "everything" | Array<string | undefined>;
}

/** What a batch reloads, why, and which files to decide again later (`wait-new`). */
export type ReloadScope =
  & (
    | { kind: "everything" }
    | { kind: "some"; workers: boolean; processes: string[] }
    | { kind: "nothing" }
  )
  & { decisions: Decision[]; why: string; recheck: string[] };

const WORKERS = "the workers";

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}

/** The rule for one file. */
export function decideFile(file: ChangedFile, kinds: readonly KindView[]): Decision {
  const decision = (rule: Rule, reloads: Decision["reloads"]): Decision => ({
    file: file.path,
    rule,
    reloads,
  });
  if (!file.module) return decision("not-a-module", "everything");
  const named = kinds.filter((kind) =>
    kind.dirs.some((dir) => file.forms.some((form) => under(form, dir)))
  );
  if (named.length > 0) return decision("named-dir", named.map((kind) => kind.process));
  if (kinds.some((kind) => kind.files === undefined)) return decision("no-graphs", "everything");
  const holding = kinds.filter((kind) => file.forms.some((form) => kind.files!.has(form)));
  // A stale graph may have gained this file: code it holds changed since it was computed.
  const maybe = file.exists ? kinds.filter((kind) => kind.stale && !holding.includes(kind)) : [];
  if (maybe.length > 0 && file.fresh && holding.length === 0) return decision("wait-new", []);
  const reloads = [...holding, ...maybe].map((kind) => kind.process);
  if (maybe.length > 0) return decision("maybe-new-import", reloads);
  if (holding.length > 0) {
    return decision(holding.some((kind) => kind.stale) ? "last-graph" : "graph", reloads);
  }
  return decision(file.exists ? "not-imported" : "gone", []);
}

/** The scope of a whole batch: the union of its files' decisions. */
export function decideBatch(
  files: readonly ChangedFile[],
  kinds: readonly KindView[],
): ReloadScope {
  const decisions = files.map((file) => decideFile(file, kinds));
  const recheck = decisions.filter((d) => d.rule === "wait-new").map((d) => d.file);
  const why = explain(decisions);
  if (decisions.some((d) => d.reloads === "everything")) {
    return { kind: "everything", decisions, why, recheck };
  }
  const reloaded = new Set(decisions.flatMap((d) => d.reloads as Array<string | undefined>));
  if (reloaded.size === 0) return { kind: "nothing", decisions, why, recheck };
  return {
    kind: "some",
    workers: reloaded.has(undefined),
    processes: [...reloaded].filter((name): name is string => name !== undefined),
    decisions,
    why,
    recheck,
  };
}

/** What each rule says of its files, for the log line. */
function phrase(rule: Rule, decisions: readonly Decision[]): string {
  const kinds = [...new Set(decisions.flatMap((d) => d.reloads === "everything" ? [] : d.reloads))]
    .map((name) => name === undefined ? WORKERS : name).join(" and ");
  switch (rule) {
    case "not-a-module":
      return "not a module (read at run time): it reloads everything";
    case "named-dir":
      return `under a directory named for ${kinds}`;
    case "no-graphs":
      return "the module graphs are not computed yet: it reloads everything";
    case "graph":
      return `in the module graph of ${kinds}`;
    case "last-graph":
      return `in the last known module graph of ${kinds} (being computed again)`;
    case "maybe-new-import":
      return `in no last known graph, but the code of ${kinds} changed since its graph was ` +
        `computed and may import it now`;
    case "wait-new":
      return "just created, in no module graph while they are computed again: decided again shortly";
    case "not-imported":
      return "not imported by the app or any process";
    case "gone":
      return "removed, and in no module graph";
  }
}

const ORDER: readonly Rule[] = [
  "not-a-module",
  "no-graphs",
  "named-dir",
  "graph",
  "last-graph",
  "maybe-new-import",
  "wait-new",
  "not-imported",
  "gone",
];

/**
 * One line for a batch: each rule that decided a file, with its files when
 * more than one rule applies (a rule's files are listed up to three).
 */
function explain(decisions: readonly Decision[]): string {
  const rules = ORDER.filter((rule) => decisions.some((d) => d.rule === rule));
  return rules.map((rule) => {
    const mine = decisions.filter((d) => d.rule === rule);
    const files = rules.length === 1
      ? ""
      : `${mine.slice(0, 3).map((d) => d.file).join(", ")}${
        mine.length > 3 ? ` and ${mine.length - 3} more` : ""
      }: `;
    return `${files}${phrase(rule, mine)} (rule: ${rule})`;
  }).join("; ");
}
