import type { RouteConfig } from '@vantageedge/shared/domain/gateway-config';
import { normalizePath } from './normalize-path.js';

/**
 * Compiles a tenant's routes once per snapshot into a matcher that, per request, only compares
 * strings (no regular expressions). Patterns:
 *   /api/users        exact
 *   /api/users/:id    `:name` matches one non-empty segment
 *   /api/*            the prefix `/api` itself and anything below it
 *   /api*             string prefix (also matches `/apix`)
 * Order: priority (higher first), then specificity — compared segment by segment, a literal beats a
 * `:param`, which beats a wildcard; an exact pattern beats a wildcard that ends where it ends — then
 * the snapshot's order. Method lists are upper-case; an empty list accepts any method.
 */

type PatternSegment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string }
  | { kind: 'prefix'; value: string } // last segment "abc*"
  | { kind: 'wildcard' }; // last segment "*"

export interface MatchableRoute {
  readonly config: RouteConfig;
}

interface CompiledPattern<Route> {
  readonly route: Route;
  readonly segments: readonly PatternSegment[];
  readonly methods: ReadonlySet<string> | null;
  readonly priority: number;
  readonly order: number;
}

export class InvalidRoutePatternError extends Error {
  constructor(
    readonly routeId: string,
    readonly pattern: string,
    reason: string,
  ) {
    super(`route ${routeId}: invalid path_pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'InvalidRoutePatternError';
  }
}

export function compilePattern(routeId: string, pattern: string): PatternSegment[] {
  const normalized = normalizePath(pattern, 'keep');
  if (!normalized.ok) throw new InvalidRoutePatternError(routeId, pattern, normalized.reason);
  const parts = normalized.path.slice(1).split('/');
  if (parts.length === 1 && parts[0] === '') return [];
  return parts.map((part, index): PatternSegment => {
    const last = index === parts.length - 1;
    if (part === '*') {
      if (!last) throw new InvalidRoutePatternError(routeId, pattern, '* is only allowed at the end');
      return { kind: 'wildcard' };
    }
    if (part.endsWith('*')) {
      if (!last) throw new InvalidRoutePatternError(routeId, pattern, '* is only allowed at the end');
      return { kind: 'prefix', value: part.slice(0, -1) };
    }
    if (part.includes('*'))
      throw new InvalidRoutePatternError(routeId, pattern, '* is only allowed at the end');
    if (part.startsWith(':')) {
      if (part.length === 1) throw new InvalidRoutePatternError(routeId, pattern, 'parameter without a name');
      return { kind: 'param', name: part.slice(1) };
    }
    return { kind: 'literal', value: part };
  });
}

const RANK = { literal: 3, param: 2, prefix: 1, wildcard: 0 } as const;

/** Negative when `a` is more specific than `b`. */
function compareSpecificity(a: readonly PatternSegment[], b: readonly PatternSegment[]): number {
  const shared = Math.min(a.length, b.length);
  for (let i = 0; i < shared; i++) {
    const difference = RANK[b[i]!.kind] - RANK[a[i]!.kind];
    if (difference !== 0) return difference;
  }
  if (a.length === b.length) return 0;
  // One pattern continues: a trailing wildcard is less specific than ending here; more segments are more.
  const longer = a.length > b.length ? a : b;
  const next = longer[shared]!;
  const longerFirst = next.kind === 'wildcard' ? 1 : -1;
  return a.length > b.length ? longerFirst : -longerFirst;
}

function segmentsMatch(pattern: readonly PatternSegment[], path: readonly string[]): boolean {
  // path[0] is the empty string before the leading slash.
  const count = path.length - 1;
  for (let i = 0; i < pattern.length; i++) {
    const expected = pattern[i]!;
    if (expected.kind === 'wildcard') return true;
    if (i >= count) return false;
    const actual = path[i + 1]!;
    switch (expected.kind) {
      case 'literal':
        if (actual !== expected.value) return false;
        break;
      case 'param':
        if (actual === '') return false;
        break;
      case 'prefix':
        return actual.startsWith(expected.value);
    }
  }
  if (pattern.length === 0) return count === 1 && path[1] === ''; // pattern "/" matches only "/"
  return pattern.length === count;
}

export class RouteMatcher<Route extends MatchableRoute> {
  /** Candidates by the request's first path segment, already in match order. */
  readonly #byFirstSegment = new Map<string, readonly CompiledPattern<Route>[]>();
  /** Routes whose first segment is not a literal (and the root route), for every other path. */
  readonly #generic: readonly CompiledPattern<Route>[];

  constructor(routes: readonly Route[]) {
    const compiled = routes.map(
      (route, order): CompiledPattern<Route> => ({
        route,
        segments: compilePattern(route.config.id, route.config.path_pattern),
        methods:
          route.config.methods.length === 0
            ? null
            : new Set(route.config.methods.map((m) => m.toUpperCase())),
        priority: route.config.priority,
        order,
      }),
    );
    compiled.sort(
      (a, b) => b.priority - a.priority || compareSpecificity(a.segments, b.segments) || a.order - b.order,
    );
    const literalFirst = (pattern: CompiledPattern<Route>) => {
      const first = pattern.segments[0];
      return first?.kind === 'literal' ? first.value : undefined;
    };
    this.#generic = compiled.filter((pattern) => literalFirst(pattern) === undefined);
    for (const pattern of compiled) {
      const key = literalFirst(pattern);
      if (key === undefined || this.#byFirstSegment.has(key)) continue;
      this.#byFirstSegment.set(
        key,
        compiled.filter((candidate) => {
          const first = literalFirst(candidate);
          return first === undefined || first === key;
        }),
      );
    }
  }

  /** `path` must come from normalizePath. */
  match(method: string, path: string): Route | undefined {
    const segments = path.split('/');
    const candidates = this.#byFirstSegment.get(segments[1] ?? '') ?? this.#generic;
    for (const candidate of candidates) {
      if (candidate.methods !== null && !candidate.methods.has(method)) continue;
      if (segmentsMatch(candidate.segments, segments)) return candidate.route;
    }
    return undefined;
  }
}
