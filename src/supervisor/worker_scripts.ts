/**
 * The scripts a module starts as Web Workers, read from its source: `deno
 * info` follows imports only, so a worker's script and the modules it
 * imports were in no graph, and an edit of them reloaded nothing while the
 * worker kept running the old code.
 *
 * Found: `new Worker(new URL("<literal>", import.meta.url), ...)` (the form
 * Deno and bundlers document) and `new Worker(import.meta.resolve("<literal>"))`,
 * with any quotes and whitespace. A computed specifier cannot be found here:
 * `--worker-dir` names such directories.
 *
 * @module
 */

const WORKER_URL =
  /new\s+Worker\s*\(\s*new\s+URL\s*\(\s*(["'`])([^"'`$\\\n]+)\1\s*,\s*import\.meta\.url\s*\)/g;
const WORKER_RESOLVE =
  /new\s+Worker\s*\(\s*import\.meta\.resolve\s*\(\s*(["'`])([^"'`$\\\n]+)\1\s*\)/g;

/**
 * The local files (absolute paths) that `source`, the text of the module at
 * `moduleUrl`, starts as workers. Specifiers are resolved against the module;
 * a bare one (an import map's business) or a remote one is left out.
 */
export function workerScripts(source: string, moduleUrl: string): string[] {
  // Most modules start no worker: one search over the text decides that.
  if (!source.includes("Worker")) return [];
  const found = new Set<string>();
  for (const pattern of [WORKER_URL, WORKER_RESOLVE]) {
    for (const match of source.matchAll(pattern)) {
      const specifier = match[2].trim();
      if (!/^(\.{1,2}\/|\/|file:)/.test(specifier)) continue;
      try {
        const url = new URL(specifier, moduleUrl);
        if (url.protocol === "file:") found.add(decodeURIComponent(url.pathname));
      } catch { /* not a URL: nothing Deno could start either */ }
    }
  }
  return [...found];
}
