import { type Balancer, type BalancerMember, takesNewRequests } from './balancer.js';

/**
 * Fewest in-flight leases per unit of weight (inFlight / weight, compared by cross-multiplying).
 * The scan starts one past the previous winner, so ties go round robin instead of always to the
 * first target. Drained members (weight 0) are left out.
 */
export function createLeastConnectionsBalancer(members: readonly BalancerMember[]): Balancer {
  const count = members.length;
  let start = 0;
  return {
    pick() {
      let best = -1;
      let bestLoad = 0;
      let bestWeight = 1;
      for (let step = 0; step < count; step++) {
        const i = (start + step) % count;
        const member = members[i]!;
        if (!takesNewRequests(member)) continue;
        if (best < 0 || member.inFlight * bestWeight < bestLoad * member.weight) {
          best = i;
          bestLoad = member.inFlight;
          bestWeight = member.weight;
        }
      }
      if (best >= 0) start = (best + 1) % count;
      return best;
    },
  };
}
