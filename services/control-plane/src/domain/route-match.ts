import type { RouteMatch } from '@vantageedge/shared/domain/route-policies';
import { matchConditionKey } from '@vantageedge/shared/routing/match-conditions';
import { normalizePath } from '@vantageedge/shared/routing/normalize-path';
import { DomainError } from './errors.js';

/** What the gateway matches a route by (shared/src/routing/route-matcher.ts). */
export interface RouteMatchFields {
  readonly path_pattern: string;
  readonly methods: readonly string[];
  readonly priority: number;
  readonly match?: RouteMatch | null | undefined;
}

/**
 * The route's match as one string, equal for two routes exactly when the gateway cannot tell them
 * apart: the pattern as the gateway reads it (escapes normalised, `:param` names dropped), methods,
 * hosts and conditions as sets (header names and hosts without case), and the priority. Of two routes
 * with one key, the gateway always takes the same one and the other never serves a request.
 */
export function routeMatchKey(route: RouteMatchFields): string {
  const match = route.match ?? null;
  return JSON.stringify([
    gatewayPattern(route.path_pattern),
    sortedSet(route.methods.map((method) => method.toUpperCase())),
    route.priority,
    sortedSet((match?.hosts ?? []).map((host) => host.toLowerCase())),
    sortedSet((match?.headers ?? []).map((condition) => matchConditionKey('header', condition))),
    sortedSet((match?.query ?? []).map((condition) => matchConditionKey('query', condition))),
  ]);
}

function gatewayPattern(pattern: string): string {
  const normalized = normalizePath(pattern, 'keep');
  const path = normalized.ok ? normalized.path : pattern;
  return path.replace(/\/:[^/]*/g, '/:');
}

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

function sortedSet(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}

/** 409 `duplicate_route`: `field` of the route would make it match exactly as `other` does. */
export function duplicateRoute(other: string, field: string): DomainError {
  const issue = `has the same path pattern, methods, hosts, header and query conditions and priority as ${other}, which the gateway would always choose instead`;
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
 * A config document's routes (every route the tenant will have) each matched in a way of its own:
 * otherwise 409 `duplicate_route` on the later entry, naming the earlier one (and its id, if given).
 */
export function requireDistinctDocumentMatches(
  routes: ReadonlyArray<RouteMatchFields & { readonly id?: string | undefined }>,
): void {
  const seen = new Map<string, number>();
  for (const [index, route] of routes.entries()) {
    const key = routeMatchKey(route);
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
