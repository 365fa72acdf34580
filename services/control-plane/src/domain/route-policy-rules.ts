import type { RouteState } from '@vantageedge/shared/domain/events';
import { invalid } from './errors.js';
import { patternPathsCanStartWith } from './pattern-prefix.js';

/**
 * Rules between a route's fields that no single field's schema can check. Applied to the whole route
 * after a create or an update (an update may change one side only), so each is a 400 naming the field
 * to change. Fields of routes recorded before a policy existed are absent: read as null.
 */
export function requireCoherentRoutePolicies(route: RouteState): void {
  const fixed = route.fixed_response ?? null;
  const redirect = route.redirect ?? null;
  if (fixed !== null && redirect !== null) {
    throw invalid('give either fixed_response or redirect, not both', 'redirect');
  }
  const answersItself = fixed !== null || redirect !== null;
  if (!answersItself && route.origin_id === null) {
    throw invalid('is required unless the route answers itself with fixed_response or redirect', 'origin_id');
  }
  if ((route.rewrite_path ?? null) !== null && route.strip_prefix !== null) {
    throw invalid(
      'give either strip_prefix or rewrite_path (rewrite_path.from_prefix strips a prefix too)',
      'rewrite_path',
    );
  }
  requireTemplateFitsPattern(route);
  requirePrefixesFitPattern(route);
  requireRetriesOfRouteMethods(route);
  const split = route.traffic_split ?? null;
  if (split !== null && route.origin_id !== null) {
    if (!split.origins.some((entry) => entry.origin_id === route.origin_id)) {
      throw invalid(
        `must include the route's origin_id (${route.origin_id}) with its weight`,
        'traffic_split.origins',
      );
    }
  }
}

/** A rewrite template's `:name` segments are the pattern's parameters; its trailing `*`, the pattern's. */
function requireTemplateFitsPattern(route: RouteState): void {
  const template = route.rewrite_path?.template;
  if (template === undefined) return;
  const patternSegments = route.path_pattern === '/' ? [] : route.path_pattern.slice(1).split('/');
  const params = new Set(patternSegments.filter((segment) => segment.startsWith(':')));
  const segments = template === '/' ? [] : template.slice(1).split('/');
  for (const segment of segments) {
    if (segment.startsWith(':') && !params.has(segment)) {
      throw invalid(
        `${segment} is not a parameter of path_pattern ${route.path_pattern}`,
        'rewrite_path.template',
      );
    }
  }
  if (segments.at(-1) === '*' && patternSegments.at(-1) !== '*') {
    throw invalid(
      `ends with * but path_pattern ${route.path_pattern} does not end with /*`,
      'rewrite_path.template',
    );
  }
}

/**
 * strip_prefix and rewrite_path.from_prefix act only on a path that starts with them: one that no path
 * of the route's pattern starts with would never apply, and every request would reach the origin as the
 * client sent it.
 */
function requirePrefixesFitPattern(route: RouteState): void {
  const prefixes: Array<[field: string, prefix: string | null | undefined]> = [
    ['strip_prefix', route.strip_prefix],
    ['rewrite_path.from_prefix', route.rewrite_path?.from_prefix],
  ];
  for (const [field, prefix] of prefixes) {
    if (prefix == null || patternPathsCanStartWith(route.path_pattern, prefix)) continue;
    throw invalid(
      `no path of path_pattern ${route.path_pattern} starts with ${prefix}: every request would reach the origin unchanged (change ${field} or path_pattern)`,
      field,
    );
  }
}

/** A route that takes none of the methods its retries may repeat would never retry a request. */
function requireRetriesOfRouteMethods(route: RouteState): void {
  const retried: readonly string[] | undefined = route.retries?.methods;
  const methods = route.methods ?? [];
  if (retried === undefined || methods.length === 0) return;
  if (methods.some((method) => retried.includes(method))) return;
  throw invalid(
    `the route takes only ${methods.join(', ')}, none of which retries may repeat (${retried.join(', ')}): list the route's methods that may be retried in retries.methods, or remove retries`,
    'retries.methods',
  );
}
