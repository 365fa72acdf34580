import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { routeConfig } from '../domain/gateway-config.js';
import { liveHeapBytes } from '../testing/live-memory.js';
import { RouteMatcher } from './route-matcher.js';

const ROUTES = 1_000;
const DEPTH = 255;
const letters = 'abcdefghijklmnopqrstuvwxyz';

/** A pattern of 255 segments, within the 512-character pattern limit: one-letter segments, then the route's own. */
const deepPattern = (i: number, letter: (k: number) => string) =>
  `/${Array.from({ length: DEPTH - 1 }, (_, k) => letter(k)).join('/')}/z${i}`;

function routesOf(pattern: (i: number) => string) {
  return Array.from({ length: ROUTES }, (_, i) => ({
    config: routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: pattern(i),
      // Half behind an API key: the matcher also files every pattern with its letters folded.
      auth_mode: i % 2 === 0 ? 'public' : 'apikey_required',
    }),
  }));
}

/** Heap the compiled matcher keeps (its patterns' compiled forms included), after GC. */
function retainedByMatcher(routes: ReturnType<typeof routesOf>): {
  bytes: number;
  matcher: RouteMatcher<(typeof routes)[number]>;
} {
  const before = liveHeapBytes();
  const matcher = new RouteMatcher(routes);
  return { bytes: liveHeapBytes() - before, matcher };
}

// Every replica holds every tenant's matcher: what it keeps per route must stay near the route's own
// pattern, not grow with routes × segments by tens of bytes a segment.
describe('RouteMatcher memory', () => {
  it('keeps a few bytes per segment of 1,000 patterns 255 segments deep', () => {
    const routes = routesOf((i) => deepPattern(i, (k) => letters[(i + k) % 26]!));
    const patternChars = routes.reduce((sum, route) => sum + route.config.path_pattern.length, 0);
    const { bytes, matcher } = retainedByMatcher(routes);
    expect(matcher.match('GET', routes[7]!.config.path_pattern)).toBe(routes[7]);
    // ≈ 32 MB (a segment object of ≈ 48 B in each of two indexes, and a 2.5 KB key per folded
    // pattern) for 0.5 MB of patterns; an array slot and a literal's entry per segment and index.
    expect(bytes).toBeLessThan(16 * patternChars);
  });

  it('keeps a few bytes per segment when the letters fold (upper case, behind an API key)', () => {
    const routes = routesOf((i) => deepPattern(i, (k) => letters[(i + k) % 26]!.toUpperCase()));
    const patternChars = routes.reduce((sum, route) => sum + route.config.path_pattern.length, 0);
    const { bytes, matcher } = retainedByMatcher(routes);
    expect(matcher.match('GET', routes[8]!.config.path_pattern)).toBe(routes[8]);
    expect(bytes).toBeLessThan(16 * patternChars);
  });

  it('keeps what match conditions require only while it files the routes by them', () => {
    // 20 hosts of 50 custom domains, 10 header and 10 query `exact` conditions a route: 500 distinct
    // conditions in all (TENANT_MAX_MATCH_CONDITIONS), each route filed by its own values.
    const conditionRoutes = () =>
      Array.from({ length: ROUTES }, (_, r) => ({
        config: routeConfig.parse({
          id: randomUUID(),
          origin_id: randomUUID(),
          path_pattern: `/r${r % 10}/*`,
          auth_mode: 'public',
          match: {
            hosts: Array.from({ length: 20 }, (_, i) => `d${(r + i) % 50}.example.com`),
            headers: Array.from({ length: 10 }, (_, i) => ({
              name: `x-m${(r * 10 + i) % 250}`,
              exact: `v${(r * 10 + i) % 250}`,
            })),
            query: Array.from({ length: 10 }, (_, i) => ({
              name: `q${(r * 10 + i) % 250}`,
              exact: `v${(r * 10 + i) % 250}`,
            })),
          },
        }),
      }));
    // A first matcher of the same shape: what compiling it leaves behind (code, tables) is not its own.
    new RouteMatcher(conditionRoutes());
    const routes = conditionRoutes();
    const matchBytes = routes.reduce((sum, route) => sum + JSON.stringify(route.config.match).length, 0);
    const { bytes, matcher } = retainedByMatcher(routes);
    expect(matcher.evaluate('GET', '/r1/x').filter((route) => route.pathMatches)).toHaveLength(ROUTES / 10);
    // ≈ 9.4 MB for 1 MB of conditions when each route kept a map of the values it requires (a set
    // per field); the indexes' buckets and each route's list of condition ids stay.
    expect(bytes).toBeLessThan(4 * matchBytes);
  });
});
