/**
 * The `hotreload` command: `deno run -A cli.ts run main.ts --workers 4`, or the
 * compiled `hotreload run main.ts --workers 4`.
 * @module
 */
import { main } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await main(Deno.args));
