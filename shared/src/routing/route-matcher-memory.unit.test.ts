import { randomUUID } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { routeConfig } from '../domain/gateway-config.js';
import { RouteMatcher } from './route-matcher.js';

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

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
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const matcher = new RouteMatcher(routes);
  collectGarbage();
  return { bytes: process.memoryUsage().heapUsed - before, matcher };
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
});
