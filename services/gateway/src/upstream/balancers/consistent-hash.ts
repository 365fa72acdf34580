import { hash32 } from '../hash.js';
import type { PickContext } from '../types.js';
import type { Balancer, BalancerMember } from './balancer.js';
import { HashRing } from './hash-ring.js';

/**
 * Consistent hashing on a key taken from the request. When the key's owner is unavailable the walk
 * continues clockwise to the next available member, so only that member's keys are redistributed.
 */
export function createConsistentHashBalancer(
  members: readonly BalancerMember[],
  keyOf: (context: PickContext) => string,
): Balancer {
  const ring = new HashRing(members);
  const { owners } = ring;
  return {
    pick(context) {
      const first = ring.firstPointAtOrAfter(hash32(keyOf(context)));
      for (let step = 0; step < owners.length; step++) {
        const owner = owners[(first + step) % owners.length]!;
        if (members[owner]!.isAvailable()) return owner;
      }
      return -1;
    },
  };
}
