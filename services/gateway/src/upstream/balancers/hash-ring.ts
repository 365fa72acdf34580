import { hash32 } from '../hash.js';

/** Virtual nodes per unit of weight: enough for an even spread with a handful of targets. */
export const POINTS_PER_WEIGHT = 160;
/**
 * Upper bound on ring size (memory per origin). Above it every weight gets proportionally fewer
 * points, so adding a target to an origin of more than MAX_RING_POINTS / 160 = 250 weight units moves
 * somewhat more than 1/N of the keys.
 */
export const MAX_RING_POINTS = 40_000;

export interface RingMember {
  readonly id: string;
  readonly weight: number;
}

/**
 * A ketama-style ring: each member owns points at hash("<id>#<n>"). Point positions depend only on
 * the member's own id, so adding or removing a member moves only the keys that land on its points.
 * Points and owners are parallel typed arrays sorted by position; lookup is a binary search.
 */
export class HashRing {
  readonly points: Uint32Array;
  readonly owners: Uint16Array;

  constructor(members: readonly RingMember[]) {
    const totalWeight = members.reduce((sum, member) => sum + member.weight, 0);
    const perWeight = Math.min(POINTS_PER_WEIGHT, MAX_RING_POINTS / Math.max(totalWeight, 1));
    const entries: Array<{ position: number; owner: number }> = [];
    members.forEach((member, owner) => {
      const count = Math.max(1, Math.round(member.weight * perWeight));
      for (let n = 0; n < count; n++) entries.push({ position: hash32(`${member.id}#${n}`), owner });
    });
    // Ties (rare 32-bit collisions) are broken by member id so the ring never depends on target order.
    entries.sort(
      (a, b) =>
        a.position - b.position ||
        (members[a.owner]!.id < members[b.owner]!.id
          ? -1
          : members[a.owner]!.id > members[b.owner]!.id
            ? 1
            : 0),
    );
    this.points = new Uint32Array(entries.length);
    this.owners = new Uint16Array(entries.length);
    entries.forEach((entry, i) => {
      this.points[i] = entry.position;
      this.owners[i] = entry.owner;
    });
  }

  /** Index of the first point at or after `position`, wrapping to 0 past the last point. */
  firstPointAtOrAfter(position: number): number {
    let low = 0;
    let high = this.points.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.points[middle]! < position) low = middle + 1;
      else high = middle;
    }
    return low === this.points.length ? 0 : low;
  }
}
