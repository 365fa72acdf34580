import { fnv1aPrefix, hash32WithNumber } from '../hash.js';

/**
 * Virtual nodes per target: enough for an even spread (each target's share within a few percent with
 * a handful of targets). Weights share an origin's points out; they do not add points.
 */
export const POINTS_PER_TARGET = 160;
/**
 * Upper bound on one origin's ring (= POINTS_PER_TARGET × 100, the most targets an origin has). With
 * points following targets, a tenant's rings have at most POINTS_PER_TARGET × its targets points
 * (TENANT_MAX_TARGETS: 1,000 targets, 160,000 points, ≈1 MB, built in a few ms).
 */
export const MAX_RING_POINTS = 16_000;

export interface RingMember {
  readonly id: string;
  readonly weight: number;
}

/**
 * A ketama-style ring: each member owns points at hash("<id>#<n>"). Point positions depend only on
 * the member's own id, so adding or removing a member moves only the keys that land on its points.
 * Points and owners are parallel typed arrays sorted by position; lookup is a binary search.
 *
 * Size: min(MAX_RING_POINTS, POINTS_PER_TARGET × members) points, shared out by weight (every member
 * keeps at least one). Unweighted members get POINTS_PER_TARGET each, as always; a member with a
 * larger weight gets proportionally more of the same budget, so an origin's weights cannot multiply
 * its ring (they did up to 40,000 points per origin: 4 million for a tenant of 100 such origins).
 *
 * A drained member (weight 0) has no point and does not count towards the budget: the ring is the one
 * the origin would have without it, so draining a target moves its keys only (equal weights keep every
 * other point where it was).
 */
export class HashRing {
  readonly points: Uint32Array;
  readonly owners: Uint16Array;
  /** Members that own points (those not drained). */
  readonly ownerCount: number;

  constructor(members: readonly RingMember[]) {
    const count = members.filter((member) => member.weight > 0).length;
    const totalWeight = members.reduce((sum, member) => sum + member.weight, 0);
    const budget = Math.min(MAX_RING_POINTS, POINTS_PER_TARGET * count);
    // One point each, then the rest of the budget by weight (integer arithmetic: exact, no overshoot).
    const shared = Math.max(0, budget - count);
    const pointsOf = members.map((member) =>
      member.weight > 0 ? 1 + Math.floor((member.weight * shared) / Math.max(totalWeight, 1)) : 0,
    );
    this.ownerCount = count;
    // Ties (rare 32-bit collisions) are broken by member id so the ring never depends on target order:
    // each point is sorted as position × 2^16 + the rank of its member's id (exact in a double).
    const byId = members.map((_, index) => index);
    byId.sort((a, b) => (members[a]!.id < members[b]!.id ? -1 : members[a]!.id > members[b]!.id ? 1 : a - b));
    const keys = new Float64Array(pointsOf.reduce((sum, n) => sum + n, 0));
    let next = 0;
    byId.forEach((owner, rank) => {
      const state = fnv1aPrefix(`${members[owner]!.id}#`);
      for (let n = 0; n < pointsOf[owner]!; n++) keys[next++] = hash32WithNumber(state, n) * 65_536 + rank;
    });
    keys.sort();
    this.points = new Uint32Array(keys.length);
    this.owners = new Uint16Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      const rank = key % 65_536;
      this.points[i] = (key - rank) / 65_536;
      this.owners[i] = byId[rank]!;
    }
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
