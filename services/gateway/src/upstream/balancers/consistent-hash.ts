import { hash32 } from '../hash.js';
import type { PickContext } from '../types.js';
import type { Balancer, BalancerMember } from './balancer.js';
import { HashRing } from './hash-ring.js';

/**
 * Consistent hashing on a key taken from the request. When the key's owner is unavailable the walk
 * continues clockwise to the next available member, so only that member's keys are redistributed.
 *
 * The walk asks each member at most once per pick (a member's other points are skipped once it is
 * known to be down) and stops as soon as every member has been found down: an origin whose targets
 * are all unavailable costs about one isAvailable() per target, not one per ring point (up to
 * 16,000, ≈1.6 ms of the shared event loop per refused request). The member picked is the same as a
 * plain walk's. A drained member (weight 0) has no point on the ring (HashRing), so it is never picked.
 */
export function createConsistentHashBalancer(
  members: readonly BalancerMember[],
  keyOf: (context: PickContext) => string,
): Balancer {
  const ring = new HashRing(members);
  const { owners } = ring;
  // Drained members (weight 0) own no point: the walk never meets them, so it stops once every owner
  // has been found down.
  const ownerCount = ring.ownerCount;
  // downInPick[member] === pickNumber: found unavailable during the current pick (preallocated, no reset).
  const downInPick = new Uint32Array(members.length);
  let pickNumber = 0;
  return {
    pick(context) {
      if (owners.length === 0) return -1;
      if (++pickNumber === 0xffff_ffff) {
        downInPick.fill(0);
        pickNumber = 1;
      }
      const first = ring.firstPointAtOrAfter(hash32(keyOf(context)));
      let down = 0;
      for (let step = 0; step < owners.length; step++) {
        const owner = owners[(first + step) % owners.length]!;
        if (downInPick[owner] === pickNumber) continue;
        if (members[owner]!.isAvailable()) return owner;
        downInPick[owner] = pickNumber;
        if (++down === ownerCount) return -1;
      }
      return -1;
    },
  };
}
