/**
 * The promise matrix with its figures: every switch × handover row of
 * tests/matrix.ts (each in a network namespace of its own, 2 workers,
 * watching, 8 keep-alive and 8 new-connection clients at once), and per
 * trigger the requests answered, failed and stale for each kind of client.
 * Needs root (`unshare -n`).
 */
import { NEW_CODE, ROWS, runRow } from "../tests/matrix.ts";
import type { Seen } from "../tests/load.ts";

const TRIGGERS = [...NEW_CODE, "crash", "recycle", "scale-up", "scale-down"];

function cell(seen?: Seen): string {
  if (!seen) return "-";
  return `${seen.failed.length} / ${seen.stale}`;
}

/** Runs the matrix; returns its markdown section. */
export async function benchMatrix(): Promise<string> {
  const lines = [
    "## The promise matrix",
    "",
    "2 workers, watching, 8 keep-alive (ka) and 8 new-connection (new) clients at once, each row in " +
    "its own network namespace (tcp_migrate_req=1 for `kernel`, else 0). Each cell: failed / " +
    "stale answers (old code more than 50 ms after any client, of either kind, first got new code; rolling mixes " +
    "generations by design). A crash fails at most the requests the killed worker held.",
    "",
    `| switch | handover | client | ${TRIGGERS.join(" | ")} | answered |`,
    `| --- | --- | --- | ${TRIGGERS.map(() => "---").join(" | ")} | --- |`,
  ];
  for (const row of ROWS) {
    const result = await runRow(row);
    for (const [kind, byTrigger] of [["ka", result.keepAlive], ["new", result.fresh]] as const) {
      const answered = Object.values(byTrigger).reduce((n, seen) => n + seen.ok, 0);
      lines.push(
        `| ${row.switch} | ${row.handover} | ${kind} | ${
          TRIGGERS.map((t) => cell(byTrigger[t])).join(" | ")
        } | ${answered} |`,
      );
    }
  }
  return lines.join("\n");
}
