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
