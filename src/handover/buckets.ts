/**
 * Sticky steering's table: `count` buckets, each naming a worker. A client
 * address hashes to a bucket (program.ts), so it keeps its worker for as
 * long as the bucket does. When the set of workers changes, a bucket keeps
 * its worker if that worker still serves and has no more than its share;
 * only the buckets of workers that left (and, when workers join, the
 * fewest needed to give them their share) change hands.
 *
 * @module
 */

/**
 * The table for `members` (each gets `count / members.length` buckets, the
 * first ones one more when it does not divide), changing as few of
 * `previous`'s buckets as that allows. Empty when there are no members.
 */
export function assignBuckets<T>(
  previous: readonly (T | undefined)[],
  members: readonly T[],
  count: number,
): T[] {
  if (members.length === 0) return [];
  const share = new Map(
    members.map((member, i) => [
      member,
      Math.floor(count / members.length) + (i < count % members.length ? 1 : 0),
    ]),
  );
  const held = new Map(members.map((member) => [member, 0]));
  const table: (T | undefined)[] = Array.from({ length: count }, (_, i) => {
    const owner = previous[i];
    if (owner === undefined || !share.has(owner) || held.get(owner)! >= share.get(owner)!) {
      return undefined; // left, or beyond its share now that others joined
    }
    held.set(owner, held.get(owner)! + 1);
    return owner;
  });
  let next = 0;
  for (let i = 0; i < count; i++) {
    if (table[i] !== undefined) continue;
    while (held.get(members[next])! >= share.get(members[next])!) next++;
    table[i] = members[next];
    held.set(members[next], held.get(members[next])! + 1);
  }
  return table as T[];
}
