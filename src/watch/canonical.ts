/**
 * One form for every path the module graphs and the watcher compare:
 * absolute, `.` and `..` resolved, symlinks resolved. `deno info` names a
 * module by the path it was imported through (a symlink stays a symlink),
 * and the watcher names a file by the real path of the root it was found
 * under (`../shared/s.ts` from `--watch ../shared`): compared as given, an
 * edit of a module imported through a link, or of a watched directory
 * outside the project, matched no graph and was dropped.
 *
 * @module
 */
import { basename, dirname, isAbsolute, resolve } from "node:path";

/**
 * The canonical form of `path` (relative paths against `base`). A path that
 * does not exist (a file just removed) keeps its name under the canonical
 * form of the nearest directory above it that does.
 */
export function canonicalSync(path: string, base = "/"): string {
  const abs = isAbsolute(path) ? resolve(path) : resolve(base, path);
  try {
    return Deno.realPathSync(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : joinPath(canonicalSync(parent), basename(abs));
  }
}

/** {@link canonicalSync}, without blocking the loop (for whole graphs at once). */
export async function canonical(path: string, base = "/"): Promise<string> {
  const abs = isAbsolute(path) ? resolve(path) : resolve(base, path);
  try {
    return await Deno.realPath(abs);
  } catch {
    const parent = dirname(abs);
    return parent === abs ? abs : joinPath(await canonical(parent), basename(abs));
  }
}

function joinPath(dir: string, name: string): string {
  return dir === "/" ? `/${name}` : `${dir}/${name}`;
}

/** True when `path` is `dir` or below it (both canonical). */
export function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === "/" ? "/" : `${dir}/`);
}
