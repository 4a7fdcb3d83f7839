/**
 * The files named on their own (`--env-file`, `alsoFiles`, a file given to
 * `--watch`), looked at directly: `Deno.watchFs` drops every event whose
 * path, links resolved, lies outside the watched paths (Deno 2.9's
 * runtime/ops/fs_events.rs, `event_matches_watched_paths`), so a named file
 * replaced by a link to a file elsewhere (`ln -s /etc/app.env .env`) came
 * with no event at all, and neither did later edits of that target. The
 * events backend compares each named file's stamp (the entry itself, and
 * what a link leads to) at its root check, every 250 ms, and marks what
 * changed.
 *
 * @module
 */

/** What a named file is now: its entry, and its target's when it is a link. */
function stampOf(abs: string): string {
  const describe = (info: Deno.FileInfo) =>
    `${info.dev}:${info.ino}:${info.size}:${info.mtime?.getTime()}:${info.isSymlink}`;
  let entry: Deno.FileInfo;
  try {
    entry = Deno.lstatSync(abs);
  } catch {
    return "missing";
  }
  if (!entry.isSymlink) return describe(entry);
  try {
    return `${describe(entry)}>${describe(Deno.statSync(abs))}`;
  } catch {
    return `${describe(entry)}>missing`;
  }
}

export class NamedFiles {
  readonly #stamps = new Map<string, string>();

  /** Stamps `paths` (absolute) as they are now. */
  constructor(paths: Iterable<string>) {
    for (const abs of paths) this.#stamps.set(abs, stampOf(abs));
  }

  /** True when `abs` is one of the named files. */
  has(abs: string): boolean {
    return this.#stamps.has(abs);
  }

  /** `abs` was reported (an event, then a batch): what it is now is known. */
  seen(abs: string): void {
    if (this.#stamps.has(abs)) this.#stamps.set(abs, stampOf(abs));
  }

  /** The named files whose stamp moved since they were last seen (each now seen). */
  changed(): string[] {
    const moved: string[] = [];
    for (const [abs, stamp] of this.#stamps) {
      const now = stampOf(abs);
      if (now === stamp) continue;
      this.#stamps.set(abs, now);
      moved.push(abs);
    }
    return moved;
  }
}
