import type { RouteMatch } from '@vantageedge/shared/domain/route-policies';
import { matchConditionKey } from '@vantageedge/shared/routing/match-conditions';
import { type RouteMatchFields, routeMatchKey } from '@vantageedge/shared/routing/route-match-key';
import { DomainError } from './errors.js';

/**
 * The header and query conditions of `routes`, each distinct one once (header names without case): what
 * a gateway replica tests per request at most, since routes share the test of a condition they share.
 */
export function distinctMatchConditions(
  routes: Iterable<{ readonly match?: RouteMatch | null | undefined }>,
): Set<string> {
  const conditions = new Set<string>();
  for (const route of routes) addMatchConditions(conditions, route.match);
  return conditions;
}

/** Adds `match`'s header and query conditions to `conditions` (see distinctMatchConditions). */
export function addMatchConditions(conditions: Set<string>, match: RouteMatch | null | undefined): void {
  for (const condition of match?.headers ?? []) conditions.add(matchConditionKey('header', condition));
  for (const condition of match?.query ?? []) conditions.add(matchConditionKey('query', condition));
}

/** 409 `duplicate_route`: `field` of the route would make it match exactly as `other` does. */
export function duplicateRoute(other: string, field: string): DomainError {
  const issue = `has the same path pattern, methods, hosts, scheme, header and query conditions and priority as ${other}, which the gateway would always choose instead`;
  return new DomainError('conflict', `the route's match is ${other}'s: ${issue}`, field, {
    issue,
    code: 'duplicate_route',
  });
}

/**
 * The first of `routes` whose match is `route`'s, or undefined. Linear in the routes: one key each.
 */
export function sameMatchAs<Route extends RouteMatchFields>(
  routes: Iterable<Route>,
  route: RouteMatchFields,
): Route | undefined {
  const key = routeMatchKey(route);
  for (const other of routes) if (routeMatchKey(other) === key) return other;
  return undefined;
}

/**
 * A config document's routes, with the live routes it leaves as they are (`kept`: those outside its
 * select_tags), are every route the tenant will have: each matched in a way of its own, otherwise 409
 * `duplicate_route` on the later entry, naming the earlier one (and its id, if given) or the kept route.
 */
export function requireDistinctDocumentMatches(
  routes: ReadonlyArray<RouteMatchFields & { readonly id?: string | undefined }>,
  kept: ReadonlyArray<RouteMatchFields & { readonly id: string }> = [],
): void {
  const keptByKey = new Map<string, string>();
  for (const route of kept) {
    const key = routeMatchKey(route);
    if (!keptByKey.has(key)) keptByKey.set(key, route.id);
  }
  const seen = new Map<string, number>();
  for (const [index, route] of routes.entries()) {
    const key = routeMatchKey(route);
    const keptId = keptByKey.get(key);
    if (keptId !== undefined && keptId !== route.id)
      throw duplicateRoute(`route ${keptId}`, `routes.${index}.path_pattern`);
    const earlier = seen.get(key);
    if (earlier === undefined) {
      seen.set(key, index);
      continue;
    }
    const id = routes[earlier]!.id;
    const other = id === undefined ? `routes.${earlier}` : `routes.${earlier} (route ${id})`;
    throw duplicateRoute(other, `routes.${index}.path_pattern`);
  }
}
