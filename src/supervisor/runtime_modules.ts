/**
 * Where the code that runs inside children (src/runtime/) lives on disk. Run
 * from source, it is the source directory. A compiled binary carries those
 * files inside itself (`deno compile --include src/runtime`), but the Deno
 * that runs the workers can only preload real files: they are written out to
 * the instance's runtime directory first.
 */
import { runtimeModulesDir } from "../control/instance_dir.ts";

const SOURCE = new URL("../runtime/", import.meta.url);
/** Every module the preloads import (runtime_modules_test.ts follows their imports to check). */
export const RUNTIME_FILES = [
  "worker_preload.ts",
  "process_preload.ts",
  "protocol.ts",
  "lines.ts",
  "child_runtime.ts",
  "deno_originals.ts",
  "spare_warmup.ts",
  "node_servers.ts",
  "forward.ts",
  "hop.ts",
  "pool_server.ts",
  "readiness.ts",
  "serve_handler.ts",
  "service.ts",
];

/** The runtime modules' directory, as a URL ending in "/". */
export function runtimeBase(instanceDir: string): string {
  if (!Deno.build.standalone) return SOURCE.href;
  const dir = runtimeModulesDir(instanceDir);
  try {
    Deno.mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  // instanceDir is checked to be ours; never write through a link planted in it.
  if (!Deno.lstatSync(dir).isDirectory) throw new Error(`${dir} is not a directory; remove it`);
  for (const file of RUNTIME_FILES) {
    Deno.writeTextFileSync(`${dir}/${file}`, Deno.readTextFileSync(new URL(file, SOURCE)));
  }
  return `file://${dir}/`;
}
