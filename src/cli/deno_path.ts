/**
 * Finds the `deno` executable that runs the workers: `--deno <path>`, else
 * `HOTRELOAD_DENO`, else the Deno running this supervisor (when not a compiled
 * binary), else `deno` on PATH.
 */
import { HotreloadError } from "../errors.ts";
import { isExecutableFile } from "../child/executable.ts";

const INSTALL_HINT = "install it with `npm install -g deno@2.9.6` or pass --deno <path>";

function findOnPath(command: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir !== "" && isExecutableFile(`${dir}/${command}`)) return `${dir}/${command}`;
  }
  return undefined;
}

/** Where `resolveDeno(flag)` takes its deno from, for messages: "--deno", "HOTRELOAD_DENO" or none. */
export function denoSource(flag?: string): string | undefined {
  if (flag !== undefined) return "--deno";
  return Deno.env.get("HOTRELOAD_DENO") !== undefined ? "HOTRELOAD_DENO" : undefined;
}

/** Returns the absolute path of the deno to use, or throws a one-line HotreloadError. */
export function resolveDeno(flag?: string): string {
  const explicit = flag ?? Deno.env.get("HOTRELOAD_DENO");
  if (explicit !== undefined) {
    const source = flag !== undefined ? "--deno" : "HOTRELOAD_DENO";
    if (explicit.includes("/")) {
      if (isExecutableFile(explicit)) return explicit;
      throw new HotreloadError(`deno not found at ${explicit} (from ${source}); ${INSTALL_HINT}`);
    }
    const found = findOnPath(explicit);
    if (found) return found;
    throw new HotreloadError(
      `deno not found: "${explicit}" (from ${source}) is not on PATH; ${INSTALL_HINT}`,
    );
  }
  if (!Deno.build.standalone) return Deno.execPath();
  const found = findOnPath("deno");
  if (found) return found;
  throw new HotreloadError(`deno not found on PATH; ${INSTALL_HINT}`);
}
