import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { methodListBreadth, routeMatchKey } from '@vantageedge/shared/routing/route-match-key';

/**
 * The order the gateway matches a tenant's routes in: priority (higher first), then specificity
 * compared segment by segment — a literal beats a `:param`, which beats a `prefix*`, which beats a
 * `*` — and, when one pattern is a continuation of the other, the longer one first unless it
 * continues with a wildcard; then more `match` conditions first; then fewer methods first (a route for
 * every method last). Ties fall back to the pattern text and the rest of what the route matches
 * (routeMatchKey), so the route a request reaches never depends on the routes' ids, which recreating
 * the same routes changes; the id only orders routes that match alike. The gateway's route matcher
 * applies the same rules up to the methods, and keeps the snapshot's order after them.
 */

const RANK_LITERAL = 3;
const RANK_PARAM = 2;
const RANK_PREFIX = 1;
const RANK_WILDCARD = 0;

function segmentRanks(pattern: string): number[] {
  const trimmed = pattern.replace(/^\/+/, '');
  if (trimmed === '') return [];
  return trimmed.split('/').map((segment) => {
    if (segment === '*') return RANK_WILDCARD;
    if (segment.endsWith('*')) return RANK_PREFIX;
    if (segment.startsWith(':')) return RANK_PARAM;
    return RANK_LITERAL;
  });
}

/** Negative when `a` is more specific than `b`. */
export function compareSpecificity(a: string, b: string): number {
  const ranksA = segmentRanks(a);
  const ranksB = segmentRanks(b);
  const shared = Math.min(ranksA.length, ranksB.length);
  for (let index = 0; index < shared; index += 1) {
    const difference = ranksB[index]! - ranksA[index]!;
    if (difference !== 0) return difference;
  }
  if (ranksA.length === ranksB.length) return 0;
  const longerIsA = ranksA.length > ranksB.length;
  const continuation = (longerIsA ? ranksA : ranksB)[shared]!;
  // `/a/*` vs `/a`: the exact end is more specific. `/a/:id` vs `/a`: longer first.
  const longerWins = continuation !== RANK_WILDCARD && continuation !== RANK_PREFIX;
  return longerIsA === longerWins ? -1 : 1;
}

/** Hosts, scheme, headers and query conditions: of two routes otherwise equal, more conditions match first. */
function conditionCount(route: RouteConfig): number {
  const match = route.match ?? null;
  if (match === null) return 0;
  return (
    (match.hosts.length > 0 ? 1 : 0) +
    (match.scheme !== undefined ? 1 : 0) +
    match.headers.length +
    match.query.length
  );
}

export function compareRoutes(a: RouteConfig, b: RouteConfig): number {
  return (
    b.priority - a.priority ||
    compareSpecificity(a.path_pattern, b.path_pattern) ||
    conditionCount(b) - conditionCount(a) ||
    methodListBreadth(a.methods) - methodListBreadth(b.methods) ||
    compareText(a.path_pattern, b.path_pattern) ||
    compareText(routeMatchKey(a), routeMatchKey(b)) ||
    compareText(a.id, b.id)
  );
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function orderRoutes(routes: readonly RouteConfig[]): RouteConfig[] {
  return [...routes].sort(compareRoutes);
}

/**
 * `routes` (already in order) with `route` added or replaced, still in order: one binary search
 * instead of re-sorting the whole list for every route event, which made building a tenant of n
 * routes from its events cost O(n² log n) pattern comparisons.
 */
export function withRoute(routes: readonly RouteConfig[], route: RouteConfig): RouteConfig[] {
  const others = routes.filter((existing) => existing.id !== route.id);
  let low = 0;
  let high = others.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareRoutes(others[middle]!, route) <= 0) low = middle + 1;
    else high = middle;
  }
  others.splice(low, 0, route);
  return others;
}
