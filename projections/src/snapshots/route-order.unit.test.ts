import { randomUUID } from 'node:crypto';
import { routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { RouteMatcher } from '@vantageedge/shared/routing/route-matcher';
import { describe, expect, it } from 'vitest';
import { compareSpecificity, orderRoutes, withRoute } from './route-order.js';

describe('route specificity', () => {
  const sorted = (patterns: string[]) => [...patterns].sort(compareSpecificity);

  it('puts literals before params before prefixes before wildcards, segment by segment', () => {
    expect(sorted(['/a/*', '/a/b*', '/a/:id', '/a/b'])).toEqual(['/a/b', '/a/:id', '/a/b*', '/a/*']);
  });

  it('puts a longer concrete pattern first, but an exact end before a trailing wildcard', () => {
    expect(sorted(['/a', '/a/:id/c'])).toEqual(['/a/:id/c', '/a']);
    expect(sorted(['/a/*', '/a'])).toEqual(['/a', '/a/*']);
  });
});

describe('withRoute', () => {
  it('keeps the list in match order as routes are added and changed, like sorting it again', () => {
    const patterns = ['/a/*', '/a/b', '/:x', '/a/:id', '/*', '/b*', '/a/b/c', '/'];
    const ids = Array.from({ length: 12 }, () => randomUUID());
    let routes: ReturnType<typeof orderRoutes> = [];
    for (let step = 0; step < 200; step++) {
      const route = routeConfig.parse({
        id: ids[(step * 7) % ids.length],
        origin_id: ids[0],
        path_pattern: patterns[(step * 5) % patterns.length],
        priority: step % 3,
        auth_mode: 'public',
      });
      routes = withRoute(routes, route);
      expect(routes).toEqual(orderRoutes(routes));
    }
    expect(routes).toHaveLength(ids.length);
  });
});

describe('routes that match the same requests', () => {
  const LOW_ID = '00000000-0000-4000-8000-000000000001';
  const HIGH_ID = 'ffffffff-ffff-4fff-bfff-ffffffffffff';
  const route = (id: string, fields: Record<string, unknown>) =>
    routeConfig.parse({ id, origin_id: LOW_ID, auth_mode: 'public', path_pattern: '/orders', ...fields });
  /** The first route of the pair, as created with either id: the same when order follows content only. */
  const firstOf = (a: Record<string, unknown>, b: Record<string, unknown>) =>
    [
      orderRoutes([route(LOW_ID, a), route(HIGH_ID, b)])[0],
      orderRoutes([route(HIGH_ID, a), route(LOW_ID, b)])[0],
    ].map((first) => ({ methods: first?.methods, match: first?.match }));

  it('puts a route naming its methods before one for every method, the shorter list first', () => {
    const [withLowId, withHighId] = firstOf({ methods: [] }, { methods: ['GET'] });
    expect(withLowId).toEqual({ methods: ['GET'], match: null });
    expect(withHighId).toEqual(withLowId);
    expect(firstOf({ methods: ['GET', 'POST'] }, { methods: ['GET'] })[0]?.methods).toEqual(['GET']);
  });

  it.each([
    [{ methods: ['GET', 'POST'] }, { methods: ['GET', 'PUT'] }],
    [
      { match: { headers: [{ name: 'x-a', exact: '1' }] } },
      { match: { headers: [{ name: 'x-b', exact: '1' }] } },
    ],
  ])('orders %j and %j by what they match, not by their ids', (a, b) => {
    const [withLowId, withHighId] = firstOf(a, b);
    expect(withHighId).toEqual(withLowId);
  });
});

describe('the projection and the gateway agree on match order', () => {
  /** A small deterministic generator (xorshift32): the same route sets on every run. */
  function generator(seed: number) {
    let state = seed;
    const next = () => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) / 0x1_0000_0000;
    };
    return { pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!, next };
  }
  const SEGMENTS = ['a', 'b', ':p', ':q'];
  const LAST_SEGMENTS = [...SEGMENTS, 'a*', '*'];
  const METHOD_LISTS = [[], ['GET'], ['GET', 'POST'], ['POST'], ['get', 'DELETE', 'POST']];
  const PATHS = [
    '/',
    '/a',
    '/b',
    '/ab',
    '/a/',
    '/a/a',
    '/a/b',
    '/b/ab',
    '/x/a',
    '/a/b/a',
    '/a/ab/b',
    '/b/b/x',
  ];

  function randomRoutes(random: ReturnType<typeof generator>, ids: readonly string[]) {
    return ids.map((id) => {
      const length = Math.floor(random.next() * 4);
      const segments = Array.from({ length }, (_, index) =>
        random.pick(index === length - 1 ? LAST_SEGMENTS : SEGMENTS),
      );
      return routeConfig.parse({
        id,
        origin_id: ids[0],
        auth_mode: 'public',
        path_pattern: `/${segments.join('/')}`,
        methods: random.pick(METHOD_LISTS),
        priority: random.next() < 0.8 ? 0 : 1,
        ...(random.next() < 0.3 ? { match: { hosts: ['api.example.com'] } } : {}),
      });
    });
  }

  it('the first route of the projection order that matches a request is the one the gateway matches', () => {
    const random = generator(0x5eed_1234);
    for (let set = 0; set < 300; set++) {
      const ids = Array.from({ length: 2 + Math.floor(random.next() * 7) }, () => randomUUID());
      const ordered = orderRoutes(randomRoutes(random, ids));
      const matcher = new RouteMatcher(ordered.map((config) => ({ config })));
      for (const path of PATHS) {
        for (const method of ['GET', 'POST', 'DELETE', 'PUT']) {
          const matching = new Set(
            matcher
              .evaluate(method, path)
              .filter((candidate) => candidate.methodMatches && candidate.pathMatches)
              .map((candidate) => candidate.route.config),
          );
          // Only routes without conditions: a request without facts meets no condition.
          const expected = ordered.find((route) => matching.has(route) && route.match === null);
          const context = `${method} ${path} in ${JSON.stringify(ordered.map((r) => [r.path_pattern, r.methods, r.priority, r.match]))}`;
          expect(matcher.match(method, path)?.config, context).toBe(expected);
        }
      }
    }
  });
});
