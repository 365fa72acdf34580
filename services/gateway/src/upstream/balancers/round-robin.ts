import { type Balancer, type BalancerMember, takesNewRequests } from './balancer.js';

/**
 * nginx's smooth weighted round robin: every pick adds each available member's weight to its score,
 * takes the highest score and subtracts the total from it. Weights {5,1,1} give a,a,b,a,c,a,a rather
 * than a,a,a,a,a,b,c. Unavailable and drained (weight 0) members are left out of the round and keep
 * their score.
 */
export function createRoundRobinBalancer(members: readonly BalancerMember[]): Balancer {
  const scores = new Int32Array(members.length);
  return {
    pick() {
      let total = 0;
      let best = -1;
      for (let i = 0; i < members.length; i++) {
        const member = members[i]!;
        if (!takesNewRequests(member)) continue;
        scores[i]! += member.weight;
        total += member.weight;
        if (best < 0 || scores[i]! > scores[best]!) best = i;
      }
      if (best >= 0) scores[best]! -= total;
      return best;
    },
  };
}
