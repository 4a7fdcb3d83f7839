/**
 * "Did you mean …?": the known name nearest to a mistyped one, for unknown
 * options, commands and config keys alike.
 */

/**
 * The known name nearest to `name` when it is near enough to be a typo
 * (case, "-" and "_" ignored; at most 1 edit for short names, 2 otherwise).
 *
 * @example
 * ```ts
 * nearest("wrokers", ["workers", "port"]); // "workers"
 * nearest("xyz", ["workers", "port"]);     // undefined
 * ```
 */
export function nearest(name: string, known: Iterable<string>): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const d = distance(norm(name), norm(candidate));
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return bestDistance <= (norm(name).length <= 4 ? 1 : 2) ? best : undefined;
}

/** Edit distance counting a swap of neighbours as one edit (optimal string alignment). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}
