import { randomUUID } from 'node:crypto';
import { routeConfig } from '@vantageedge/shared/domain/gateway-config';
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
