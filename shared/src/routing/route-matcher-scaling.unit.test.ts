import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { type RouteConfig, routeConfig } from '../domain/gateway-config.js';
import { normalizePath } from './normalize-path.js';
import { AmbiguousPath, RouteMatcher } from './route-matcher.js';

const route = (path_pattern: string, extra: Partial<RouteConfig> = {}) => ({
  config: routeConfig.parse({
    id: randomUUID(),
    origin_id: randomUUID(),
    path_pattern,
    auth_mode: 'public',
    ...extra,
  }),
});

/** n routes: most under their own first segment, some generic (`/:tenant/...`, `/*`-style). */
function manyRoutes(n: number) {
  return Array.from({ length: n }, (_, i) =>
    i % 4 === 0 ? route(`/:p${i}/s${i}/*`) : route(`/svc${i}/items/:id`, { priority: i % 3 }),
  );
}

/**
 * Regression test: compiling the matcher built, for every distinct first segment, a filtered copy of
 * all routes — O(routes²) work (8,000 routes ≈ 1 s, 16,000 ≈ 2.2 s) on every replica's event loop for
 * every snapshot. The compile must grow like n log n: 8× the routes may cost at most ~8 × log ratio.
 */
describe('RouteMatcher compile scaling', () => {
  it('does O(n log n) compile work: 16,000 routes cost well under 64× what 2,000 do', () => {
    const small = new RouteMatcher(manyRoutes(2_000));
    const large = new RouteMatcher(manyRoutes(16_000));
    expect(small.compileSteps).toBeGreaterThan(0);
    const growth = large.compileSteps / small.compileSteps;
    // n log n predicts 8 × log(16000)/log(2000) ≈ 10.2; quadratic would be 64.
    expect(growth).toBeLessThan(12);
  });

  /**
   * Regression test: each pattern's literal segments were sorted rarest first by a comparison that
   * looked both segments' counts up by a key built per call: 1,000 patterns of 255 one-letter
   * segments (within the 512-character pattern limit, ≈ 1.1 MB of snapshot), half of them behind an
   * API key, took 0.3–0.6 s of every replica's event loop to compile, for every version of the tenant.
   * Each literal segment is counted and looked up once per index (as written, letters folded).
   */
  it('does a few steps per literal segment for patterns 255 segments deep', () => {
    const depth = 255;
    const letters = 'abcdefghijklmnopqrstuvwxyz';
    // Letters of uneven rarity at each position, so that sorting a pattern's literals has work to do.
    const deepPattern = (i: number) =>
      `/${Array.from({ length: depth - 1 }, (_, k) => letters[((i * 7919 + k * k * 31) >> 3) % 26]).join('/')}/Z${i}`;
    const routes = Array.from({ length: 1_000 }, (_, i) =>
      route(deepPattern(i), { auth_mode: i % 2 === 0 ? 'public' : 'apikey_required' }),
    );
    const matcher = new RouteMatcher(routes);
    // Two indexes (as written and folded): each literal counted and looked up once in each, plus
    // the sort's comparisons and placements of the patterns themselves.
    expect(matcher.compileSteps).toBeLessThan(2 * 3 * routes.length * depth);
    expect(matcher.match('GET', deepPattern(7))).toBe(routes[7]);
  });

  it('matches exactly like trying every route in match order (random routes and paths)', () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const words = ['a', 'b', 'c', 'api', 'v1'];
    const segment = () => {
      const kind = random(6);
      if (kind === 0) return `:x${random(3)}`;
      return words[random(words.length)]!;
    };
    const routes = Array.from({ length: 300 }, () => {
      const length = 1 + random(3);
      const parts = Array.from({ length }, segment);
      const tail = random(4);
      if (tail === 0) parts.push('*');
      else if (tail === 1) parts[parts.length - 1] = `${words[random(words.length)]}*`;
      const methods = random(3) === 0 ? ['POST'] : [];
      return route(`/${parts.join('/')}`, { priority: random(3), methods });
    });
    const matcher = new RouteMatcher(routes);
    const index = new Map(routes.map((r, i) => [r, i]));
    const alone = routes.map((r) => new RouteMatcher([r]));
    // Reference: of two routes that both match, the matcher of just those two (in snapshot order)
    // tells which comes first; the winner among all matching routes beats each of the others.
    const first = (x: (typeof routes)[number], y: (typeof routes)[number], method: string, path: string) => {
      const pair = index.get(x)! < index.get(y)! ? [x, y] : [y, x];
      return new RouteMatcher(pair).match(method, path)!;
    };
    for (let k = 0; k < 2000; k++) {
      const parts = Array.from({ length: 1 + random(4) }, () => words[random(words.length)]!);
      const path = normalizePath(`/${parts.join('/')}`, 'keep');
      if (!path.ok) continue;
      const method = random(2) === 0 ? 'GET' : 'POST';
      const matching = routes.filter((_, i) => alone[i]!.match(method, path.path) !== undefined);
      const expected = matching.reduce<(typeof routes)[number] | undefined>(
        (best, r) => (best === undefined ? r : first(best, r, method, path.path)),
        undefined,
      );
      expect(matcher.match(method, path.path)).toBe(expected);
    }
  });

  /**
   * Regression test: `resolve` compared every route another reading of the path matched with every
   * other one (and deduplicated them by scanning the list): 1,000 routes `/*` with one rate limit and a
   * stricter route held a replica's event loop ≈ 470 ms per request (HEAD `/A/b;x/`), a million
   * protection comparisons each serialising both limits. The work must grow linearly with the routes.
   */
  it('compares the protections of the routes a request reads as a linear number of times', () => {
    const routes = Array.from({ length: 1_000 }, (_, i) =>
      i === 999
        ? route('/*', { auth_mode: 'apikey_required' })
        : route('/*', { rate_limit: { requests_per_second: 5 } as RouteConfig['rate_limit'] }),
    );
    const matcher = new RouteMatcher(routes);
    const stringify = JSON.stringify;
    let serialised = 0;
    JSON.stringify = ((...args: Parameters<typeof stringify>) => {
      serialised++;
      return stringify(...args);
    }) as typeof stringify;
    let found: unknown;
    try {
      found = matcher.resolve('HEAD', '/A/b;x/');
    } finally {
      JSON.stringify = stringify;
    }
    expect(found).toBeInstanceOf(AmbiguousPath);
    expect((found as AmbiguousPath<unknown>).routes).toHaveLength(1_000);
    expect(serialised).toBeLessThan(10 * routes.length);
  });

  /**
   * Regression test: each comparison serialised both routes' IP rules and rate limits. 1,000 routes
   * that one path reaches (letter case), each with its own copy of the same 400 IPv6 ranges, and one
   * with a rate limit too, held a replica's event loop ≈ 80 ms per request to that path. A policy is
   * serialised once per distinct object when the routes are compiled, and never per request.
   */
  it('serialises each route policy once when compiled and none per request', () => {
    const ranges = (from: number) =>
      Array.from({ length: 200 }, (_, k) => `2001:db8:0:${(from + k).toString(16)}::/64`);
    const caseVariant = (i: number) =>
      [...'abcdefghij'].map((c, bit) => ((i >> bit) & 1 ? c.toUpperCase() : c)).join('');
    const routes = Array.from({ length: 1_000 }, (_, i) =>
      route(`/${caseVariant(i)}/*`, {
        ip_rules: { allow: ranges(0), deny: ranges(1_000) },
        ...(i === 999 ? { rate_limit: { requests_per_second: 5 } as RouteConfig['rate_limit'] } : {}),
      }),
    );
    const stringify = JSON.stringify;
    let serialised = 0;
    JSON.stringify = ((...args: Parameters<typeof stringify>) => {
      serialised++;
      return stringify(...args);
    }) as typeof stringify;
    let compiledWith: number;
    let found: unknown;
    try {
      const matcher = new RouteMatcher(routes);
      compiledWith = serialised;
      serialised = 0;
      found = matcher.resolve('GET', '/abcdefghij/x');
    } finally {
      JSON.stringify = stringify;
    }
    // The route with the rate limit protects the most: every reading of the path goes to it.
    expect(found).toBe(routes[999]);
    expect(serialised).toBe(0);
    expect(compiledWith).toBeLessThanOrEqual(routes.length + 1);
  });
});

/**
 * Regression test: every route's pattern was compared with the path segment by segment, for each
 * reading of the path, each method reading and both indexes. A tenant's 1,000 routes 168 segments deep
 * (`/:a/…/:a/x1`, or `/a/…/a/x1`: within the 512-character pattern limit) and a strict `/*` made one
 * `HEAD /A;B/…/ZZZ` cost ≈ 30 ms of a replica's event loop (2.7 million segment comparisons; 24,000 when a
 * pattern is tested by its segment count and its literal segments, the rarest first): the work per
 * request grows with the routes, not with routes × pattern depth.
 */
describe('RouteMatcher per-request work', () => {
  const deepRoutes = (depth: number, segment: (i: number) => string) => {
    const routes = Array.from({ length: 1_000 }, (_, i) =>
      route(`${Array.from({ length: depth }, () => segment(i)).join('')}/x${i}`),
    );
    routes.push(route('/*', { auth_mode: 'apikey_required' }));
    return new RouteMatcher(routes);
  };
  const stepsOf = (matcher: RouteMatcher<ReturnType<typeof route>>, method: string, path: string) => {
    const before = matcher.matchSteps;
    const found = matcher.resolve(method, path);
    return { steps: matcher.matchSteps - before, found };
  };

  for (const [shape, segment] of [
    ['parameters', () => '/:a'],
    ['literals', () => '/a'],
    ['literals and parameters', (i: number) => (i % 2 === 0 ? '/a' : '/:a')],
  ] as const) {
    it(`compares about as many segments for patterns 160 segments deep as for 10 (${shape})`, () => {
      const work = [10, 160].map((depth) => {
        const matcher = deepRoutes(depth, segment);
        const deepPath = `${'/A;B'.repeat(depth)}/ZZZ`;
        const { steps, found } = stepsOf(matcher, 'HEAD', deepPath);
        // Only the strict catch-all matches, through every reading.
        expect(found).toBeDefined();
        expect(found).not.toBeInstanceOf(AmbiguousPath);
        return steps;
      });
      expect(work[1]! / work[0]!).toBeLessThan(2);
    });
  }
});

/**
 * Regression test: `resolve` walked the tenant's patterns once per reading of the path, per method
 * reading (HEAD, and HEAD as GET) and per index (as written, letters folded), and once more for the
 * routes tied with each folded match: 1,000 routes `/:a/xN/*` for POST only and a strict `/*` made one
 * `HEAD /A;B/ZZZ/` compare ≈ 32,000 patterns (1–7 ms of a replica's event loop). One walk per reading
 * finds what every method and both indexes find.
 */
describe('RouteMatcher per-request walks', () => {
  const stepsOf = (matcher: RouteMatcher<ReturnType<typeof route>>, method: string, path: string) => {
    const before = matcher.matchSteps;
    const found = matcher.resolve(method, path);
    return { steps: matcher.matchSteps - before, found };
  };

  for (const [shape, pattern] of [
    ['a literal after a parameter', (i: number) => `/:a/x${i}/*`],
    ['40 parameters', (i: number) => `${'/:a'.repeat(40)}/x${i}`],
  ] as const) {
    it(`compares each pattern at most once per reading of a HEAD request's path (${shape})`, () => {
      const routes = Array.from({ length: 1_000 }, (_, i) => route(pattern(i), { methods: ['POST'] }));
      const strict = route('/*', { auth_mode: 'apikey_required' });
      const matcher = new RouteMatcher([...routes, strict]);
      const depth = pattern(0).split('/').length - 2;
      const path = `${'/A;B'.repeat(depth)}/ZZZ/`;
      const readings = 4; // as written, without `;` parameters, and each with its trailing slash toggled
      const { steps, found } = stepsOf(matcher, 'HEAD', path);
      expect(found).toBe(strict);
      // Each pattern once per reading: its segment count, then its one literal segment (and the catch-all,
      // matched with letters folded, compared as written too).
      expect(steps).toBeLessThanOrEqual(readings * 2 * (routes.length + 1) + readings * 2);
    });
  }
});

const shardRequest = (headers: Record<string, string>, query = '', preflight = false) => ({
  facts: { req: { headers: { host: 'shop.example.com', ...headers } } as unknown as IncomingMessage, query },
  preflight,
});

/**
 * Regression test: routes on one path told apart only by their own exact header value (1,000 routes
 * `/api/*`, each for one `x-tenant-shard`) were each compared with the path and had their condition
 * tested, for every reading of the path (≈ 150 µs of a replica's event loop, shared with other tenants,
 * per request). The routes are filed by that value when the snapshot is compiled: a request visits the
 * routes of its own value and those without such a condition.
 */
describe('RouteMatcher routes told apart by an exact condition value', () => {
  // Every route also requires the tenant's host: a field all routes require one value of tells none apart.
  const exactHeader = (value: string) => ({
    match: { hosts: ['shop.example.com'], headers: [{ name: 'X-Tenant-Shard', exact: value }], query: [] },
  });
  const workOf = (matcher: RouteMatcher<ReturnType<typeof route>>, run: () => unknown) => {
    const [steps, tests] = [matcher.matchSteps, matcher.conditionTests];
    const found = run();
    return { found, steps: matcher.matchSteps - steps, tests: matcher.conditionTests - tests };
  };

  it('visits only the routes of the header value a HEAD request carries, through every reading', () => {
    const shards = Array.from({ length: 1_000 }, (_, i) => route('/api/*', exactHeader(String(i))));
    const strict = route('/*', { auth_mode: 'apikey_required' });
    const matcher = new RouteMatcher([...shards, strict]);
    const request = shardRequest({ 'x-tenant-shard': '731' });
    const { found, steps, tests } = workOf(matcher, () => matcher.resolve('HEAD', '/Api;x/', request));
    // The strict catch-all is met through the readings that fold letters: it handles the request.
    expect(found).toBe(strict);
    expect(matcher.resolve('GET', '/api/x', request)).toBe(shards[731]);
    expect(matcher.match('GET', '/api/x', request)).toBe(shards[731]);
    expect(tests).toBeLessThanOrEqual(2);
    expect(steps).toBeLessThanOrEqual(40);
  });

  it('visits only the routes of the request host and of its query parameter value', () => {
    const byHost = Array.from({ length: 500 }, (_, i) =>
      route('/v/:id', { match: { hosts: [`h${i}.example.com`], headers: [], query: [] } }),
    );
    const byQuery = Array.from({ length: 500 }, (_, i) =>
      route('/q/*', { match: { hosts: [], headers: [], query: [{ name: 'shard', exact: String(i) }] } }),
    );
    const matcher = new RouteMatcher([...byHost, ...byQuery]);
    const hostRequest = shardRequest({ host: 'H250.example.com' });
    const host = workOf(matcher, () => matcher.resolve('GET', '/v/1', hostRequest));
    expect(host.found).toBe(byHost[250]);
    expect(host.tests).toBeLessThanOrEqual(2);
    const query = workOf(matcher, () => matcher.resolve('GET', '/q/x', shardRequest({}, '?shard=250')));
    expect(query.found).toBe(byQuery[250]);
    expect(query.tests).toBeLessThanOrEqual(2);
  });

  // `api.shard` is read as PHP's `api_shard` and as the `api[shard]` ASP.NET Core and Spring bind: a
  // client's one `api.shard=250` is one value of it, which visits the routes filed under 250 alone.
  it('visits only the routes of a query parameter value named with a `.`, sent once', () => {
    const byShard = Array.from({ length: 500 }, (_, i) =>
      route('/q/*', { match: { hosts: [], headers: [], query: [{ name: 'api.shard', exact: String(i) }] } }),
    );
    const matcher = new RouteMatcher(byShard);
    for (const query of ['?api.shard=250', '?api_shard=250', '?api[shard]=250', '?Api.Shard=250']) {
      const sent = workOf(matcher, () => matcher.resolve('GET', '/q/x', shardRequest({}, query)));
      expect({ query, found: sent.found === byShard[250], tests: sent.tests }).toEqual({
        query,
        found: true,
        tests: 1,
      });
    }
  });

  for (const favoured of ['hosts', 'headers', 'query'] as const) {
    it(`matches exactly like the matcher without the index (random routes mostly told apart by ${favoured})`, () => {
      let seed = 11;
      // The high bits: an LCG's low bits repeat with a short period.
      const random = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
        return Math.floor((seed / 2 ** 31) * n);
      };
      const pick = <T>(values: readonly T[]) => values[random(values.length)]!;
      const often = (field: typeof favoured) => (field === favoured ? random(4) !== 0 : random(6) === 0);
      const words = ['a', 'B', 'api'];
      const values = ['1', '2', '3'];
      const conditions = (field: typeof favoured, names: readonly string[]) =>
        Array.from({ length: often(field) ? 1 + random(2) : 0 }, () => {
          const name = pick(names);
          return pick([
            { name, exact: pick(values) },
            { name, exact: pick(values) },
            { name, exact: pick(values) },
            { name, prefix: '1' },
            { name, present: random(2) === 0 },
          ]);
        });
      const routes = Array.from({ length: 400 }, () => {
        const parts = Array.from({ length: 1 + random(2) }, () => (random(5) === 0 ? ':p' : pick(words)));
        if (random(3) === 0) parts.push('*');
        const match = {
          hosts: often('hosts')
            ? Array.from({ length: 1 + random(2) }, () => `h${pick(values)}.example.com`)
            : [],
          headers: conditions('headers', ['x-shard', 'X-Shard', 'x-ver']),
          query: conditions('query', ['shard', 'ver']),
        };
        return route(`/${parts.join('/')}`, {
          priority: random(2),
          methods: random(4) === 0 ? ['POST'] : [],
          match: random(6) === 0 ? null : match,
          ...(random(8) === 0 ? { auth_mode: 'apikey_required' as const } : {}),
        });
      });
      const indexed = new RouteMatcher(routes);
      const straightforward = new RouteMatcher(routes, null, { indexConditionValues: false });
      for (let k = 0; k < 1_500; k++) {
        const segments = Array.from({ length: 1 + random(3) }, () => pick([...words, 'A', 'Api']));
        const path = normalizePath(`/${segments.join('/')}${pick(['', '/', ';x'])}`, 'keep');
        if (!path.ok) continue;
        const headers: Record<string, string> = { host: `h${pick(values)}.example.com` };
        if (random(4) !== 0) headers['x-shard'] = pick(values);
        if (random(2) === 0) headers['x-ver'] = pick(values);
        const query = pick([
          '',
          `?shard=${pick(values)}`,
          `?shard=${pick(values)}&shard=${pick(values)}&ver=1`,
          '?ver=2',
        ]);
        const request = random(10) === 0 ? undefined : shardRequest(headers, query, random(6) === 0);
        const method = pick(['GET', 'HEAD', 'POST']);
        expect(indexed.match(method, path.path, request)).toBe(
          straightforward.match(method, path.path, request),
        );
        const [found, expected] = [indexed, straightforward].map((m) =>
          m.resolve(method, path.path, request),
        );
        if (expected instanceof AmbiguousPath)
          expect((found as AmbiguousPath<unknown>).routes).toEqual(expected.routes);
        else expect(found).toBe(expected);
      }
      // The index left routes out (the comparison above is not between two unindexed matchers).
      expect(indexed.matchSteps).toBeLessThan(straightforward.matchSteps);
    });
  }
});
