/**
 * `hotreload scale <n>`: more or fewer workers; new ones join ready-gated,
 * removed ones drain. Waits until the new workers are ready (or the removed
 * ones have left service: they drain on, closing their idle connections
 * after the close window) and reports, as `reload` does.
 */
import { askOverSocket } from "../../control/client.ts";
import { MAX_WORKERS } from "../../config/limits.ts";
import { parseControlArgs } from "../control_args.ts";
import { HotreloadError, UsageError } from "../../errors.ts";
import { SCALE_HELP } from "../help.ts";

export async function scaleCommand(argv: string[]): Promise<number> {
  const args = parseControlArgs("scale", SCALE_HELP, argv);
  if (!args) return 0;
  const { values, positionals } = args;
  const raw = positionals[0];
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_WORKERS) {
    throw new UsageError(
      `scale needs a whole number of workers from 1 to ${MAX_WORKERS} (got "${raw}")`,
    );
  }
  const workers = Number(raw);
  const timeoutMs = values.timeout === undefined ? 60_000 : Number(values.timeout);
  const started = Date.now();
  const reply = await askOverSocket(values, { cmd: "scale", workers });
  console.error(`hotreload: ${reply.message}`);
  const deadline = started + timeoutMs;
  while (true) {
    const status = await askOverSocket(values, { cmd: "status" });
    const rows = status.status!.children.filter((row) =>
      row.role === "worker" && row.state !== "draining" && row.state !== "held"
    );
    const ready = rows.filter((row) => row.state === "ready").length;
    if (rows.length === workers && ready === workers) {
      console.error(`hotreload: ${workers} worker(s) ready in ${Date.now() - started} ms`);
      return 0;
    }
    if (Date.now() > deadline) {
      const failing = rows.filter((row) => row.state === "backoff" || row.state === "errored");
      throw new HotreloadError(
        `after ${timeoutMs} ms, ${ready} of ${workers} worker(s) are ready` +
          (failing.length > 0 ? ` and ${failing.length} keep failing; see the instance's log` : ""),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
