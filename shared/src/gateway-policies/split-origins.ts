import type { RouteConfig } from '../domain/gateway-config.js';

/** One origin of a traffic split in effect, with its weight (above 0). */
export interface WeightedSplitOrigin<Origin> {
  readonly origin: Origin;
  readonly weight: number;
}

/**
 * The weighted origins a route's traffic split sends requests to, as gateways compile it: those the
 * config has (`originOf`), with a weight above 0, in the split's order. Null when the route has no split
 * in effect — none, one that answers itself (fixed_response, redirect), or one with no such origin —
 * and sends to its own origin.
 */
export function weightedSplitOrigins<Origin>(
  route: RouteConfig,
  originOf: (id: string) => Origin | undefined,
  warn?: (message: string) => void,
): WeightedSplitOrigin<Origin>[] | null {
  const split = route.traffic_split ?? null;
  if (split === null || (route.fixed_response ?? null) !== null || (route.redirect ?? null) !== null) {
    return null;
  }
  const entries: WeightedSplitOrigin<Origin>[] = [];
  for (const { origin_id, weight } of split.origins) {
    const origin = originOf(origin_id);
    if (origin === undefined) warn?.(`traffic_split names unknown origin ${origin_id}: left out`);
    else if (weight > 0) entries.push({ origin, weight });
  }
  return entries.length === 0 ? null : entries;
}
