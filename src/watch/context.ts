/**
 * What both backends share: the resolved watch roots, the filter, path
 * conversion, and a directory walk that honours the filter.
 *
 * @module
 */
import { relative } from "node:path";
import type { PathFilter } from "./filter.ts";
import type { ChangeBatch } from "./types.ts";

/** One resolved `--watch` path. */
export interface Root {
  /** Real absolute path of the watched file or directory. */
  abs: string;
  /** `abs` relative to the project root. */
  rel: string;
  /** Directory actually watched: `abs` itself, or the parent of a watched file. */
  dirAbs: string;
  dirRel: string;
  /** For a watched file: its name in `dirAbs` (only that entry counts). */
  only?: string;
}

/** Everything a backend needs. */
export interface Context {
  /** Real absolute project root. */
  rootAbs: string;
  roots: Root[];
  filter: PathFilter;
  debounceMs: number;
  onBatch: (batch: ChangeBatch) => void;
  /** Something the user should know about, said once (a named file that is a FIFO). */
  onNote?: (text: string) => void;
}

/** Absolute path → path relative to the project root, "/"-separated. */
export function toRel(rootAbs: string, abs: string): string {
  if (abs === rootAbs) return "";
  if (rootAbs === "/") return abs.slice(1);
  if (abs.startsWith(rootAbs) && abs[rootAbs.length] === "/") return abs.slice(rootAbs.length + 1);
  return relative(rootAbs, abs).replaceAll("\\", "/");
}

/** Join a relative directory and a name. */
export function joinRel(dirRel: string, name: string): string {
  return dirRel === "" ? name : `${dirRel}/${name}`;
}

/** Join an absolute directory and a name. */
export function joinAbs(dirAbs: string, name: string): string {
  return dirAbs === "/" ? `/${name}` : `${dirAbs}/${name}`;
}

/** Kind of a directory entry, following a symlink to a file (never to a directory). */
export function entryKind(
  dirAbs: string,
  e: Deno.DirEntry,
): "file" | "dir" | null {
  if (e.isFile) return "file";
  if (e.isDirectory) return "dir";
  if (e.isSymlink) {
    try {
      return Deno.statSync(joinAbs(dirAbs, e.name)).isFile ? "file" : null;
    } catch {
      return null;
    }
  }
  return null;
}

/** Read a directory, or null when it is gone or unreadable. */
export function readDirOrNull(dirAbs: string): Deno.DirEntry[] | null {
  try {
    return [...Deno.readDirSync(dirAbs)];
  } catch {
    return null;
  }
}

/**
 * Walk the watched files below `dirAbs` (which must itself be watched),
 * skipping ignored directories without reading them.
 */
export function walkFiles(
  filter: PathFilter,
  dirAbs: string,
  dirRel: string,
  onFile: (rel: string) => void,
  onDir?: (rel: string) => void,
): void {
  onDir?.(dirRel);
  const entries = readDirOrNull(dirAbs);
  if (entries === null) return;
  for (const e of entries) {
    const kind = entryKind(dirAbs, e);
    if (kind === "file") {
      if (filter.acceptsChildFile(dirRel, e.name)) onFile(joinRel(dirRel, e.name));
    } else if (kind === "dir" && !filter.ignoredChildDir(dirRel, e.name)) {
      walkFiles(filter, joinAbs(dirAbs, e.name), joinRel(dirRel, e.name), onFile, onDir);
    }
  }
}
