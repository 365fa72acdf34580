import type { RouteMatch } from '../domain/route-policies.js';
import { matchConditionKey } from './match-conditions.js';
import { normalizePath } from './normalize-path.js';

/** What the gateway matches a route by (route-matcher.ts). */
export interface RouteMatchFields {
  readonly path_pattern: string;
  readonly methods: readonly string[];
  readonly priority: number;
  readonly match?: RouteMatch | null | undefined;
}

/**
 * The route's match as one string, equal for two routes exactly when the gateway cannot tell them
 * apart: the pattern as the gateway reads it (escapes normalised, `:param` names dropped), methods,
 * hosts and conditions as sets (header names and hosts without case), the scheme, and the priority. Of two routes
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
    match?.scheme ?? null,
  ]);
}

/**
 * How many methods a route takes, for match order: of two routes otherwise equal, the one taking fewer
 * comes first, and an empty list (every method) counts as more than any list.
 */
export function methodListBreadth(methods: readonly string[]): number {
  return methods.length === 0
    ? Number.MAX_SAFE_INTEGER
    : new Set(methods.map((method) => method.toUpperCase())).size;
}

function gatewayPattern(pattern: string): string {
  const normalized = normalizePath(pattern, 'keep');
  const path = normalized.ok ? normalized.path : pattern;
  return path.replace(/\/:[^/]*/g, '/:');
}

function sortedSet(values: readonly string[]): string[] {
  return [...new Set(values)].sort();
}
