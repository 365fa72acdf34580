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
  /** Position in the snapshot (the last tie-break). */
  readonly order: number;
  /** Position in match order, set once sorted. */
  rank: number;
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

/** First matching candidate of one list, in match order. */
function firstMatch<Route>(
  candidates: readonly CompiledPattern<Route>[],
  method: string,
  segments: readonly string[],
): Route | undefined {
  for (const candidate of candidates) {
    if (candidate.methods !== null && !candidate.methods.has(method)) continue;
    if (segmentsMatch(candidate.segments, segments)) return candidate.route;
  }
  return undefined;
}

/**
 * Compiled in O(n log n) for n routes: one sort, then one pass that files each route under its literal
 * first segment (or in the generic list). A request walks its segment's list and the generic list
 * merged by match order, so no per-segment copy of the generic list is ever built (that copy made the
 * compile O(n²) for tenants with many first segments, blocking every replica's event loop).
 */
export class RouteMatcher<Route extends MatchableRoute> {
  /** Candidates whose first segment is that literal, in match order. */
  readonly #byFirstSegment = new Map<string, CompiledPattern<Route>[]>();
  /** Routes whose first segment is not a literal (and the root route), in match order. */
  readonly #generic: CompiledPattern<Route>[] = [];
  /** Elementary compile steps (comparisons and placements): how compile work grows with the routes. */
  readonly compileSteps: number;

  constructor(routes: readonly Route[]) {
    let steps = 0;
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
        rank: 0,
      }),
    );
    compiled.sort((a, b) => {
      steps++;
      return b.priority - a.priority || compareSpecificity(a.segments, b.segments) || a.order - b.order;
    });
    for (let rank = 0; rank < compiled.length; rank++) {
      steps++;
      const pattern = compiled[rank]!;
      pattern.rank = rank;
      const first = pattern.segments[0];
      if (first?.kind !== 'literal') {
        this.#generic.push(pattern);
        continue;
      }
      const bucket = this.#byFirstSegment.get(first.value);
      if (bucket === undefined) this.#byFirstSegment.set(first.value, [pattern]);
      else bucket.push(pattern);
    }
    this.compileSteps = steps;
  }

  /** `path` must come from normalizePath. */
  match(method: string, path: string): Route | undefined {
    const segments = path.split('/');
    const generic = this.#generic;
    const literal = this.#byFirstSegment.get(segments[1] ?? '');
    if (literal === undefined) return firstMatch(generic, method, segments);
    if (generic.length === 0) return firstMatch(literal, method, segments);
    // Both lists are in match order: walk them merged by rank.
    let i = 0;
    let j = 0;
    while (i < literal.length || j < generic.length) {
      const a = literal[i];
      const b = generic[j];
      let candidate: CompiledPattern<Route>;
      if (b === undefined || (a !== undefined && a.rank < b.rank)) {
        candidate = a!;
        i++;
      } else {
        candidate = b;
        j++;
      }
      if (candidate.methods !== null && !candidate.methods.has(method)) continue;
      if (segmentsMatch(candidate.segments, segments)) return candidate.route;
    }
    return undefined;
  }
}
