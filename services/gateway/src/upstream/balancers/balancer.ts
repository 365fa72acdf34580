import type { PickContext } from '../types.js';

/** What a balancer sees of a target; the upstream set owns the live state behind it. */
export interface BalancerMember {
  readonly id: string;
  /** 0: drained (Kong's and APISIX's weight 0): kept, health-checked, but sent no new request. */
  readonly weight: number;
  /** Leases handed out and not yet released. */
  readonly inFlight: number;
  /** Healthy and its circuit admits a request. */
  isAvailable(): boolean;
}

/**
 * Chooses one member per request. Built once per origin (when a snapshot arrives); `pick` runs per
 * request, so implementations keep their state in preallocated arrays and allocate nothing.
 */
export interface Balancer {
  /** Index into the members array, or -1 when no member is available. */
  pick(context: PickContext): number;
}

/** May the member be sent a new request: it is not drained (weight 0) and it is available. */
export function takesNewRequests(member: BalancerMember): boolean {
  return member.weight > 0 && member.isAvailable();
}
