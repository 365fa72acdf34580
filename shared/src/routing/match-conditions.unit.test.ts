import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it, vi } from 'vitest';
import { routeConfig } from '../domain/gateway-config.js';
import { rawQueryPairs } from '../http/form-decoding.js';
import { compileConditions, headersNeverMet, requestValue } from './match-conditions.js';
import { RouteMatcher } from './route-matcher.js';

vi.mock('../http/form-decoding.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../http/form-decoding.js')>();
  return { ...actual, rawQueryPairs: vi.fn(actual.rawQueryPairs) };
});

const request = { headers: { host: 'shop.example.com' } } as unknown as IncomingMessage;

describe('route match conditions', () => {
  it('reads query parameters as URLSearchParams does (+ and percent-decoding, repeated names)', () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [],
      query: [
        { name: 'q', exact: 'a b' },
        { name: 'tag', prefix: 'x' },
        { name: 'debug', present: false },
      ],
    })!;
    const test = (query: string) => conditions.test({ req: request, query }, false);
    expect(test('?q=a+b&tag=y&tag=x1')).toBe(true);
    expect(test('?q=a%20b&tag=x')).toBe(true);
    expect(test('?q=zz&q=a+b&q=a&tag=w&tag=xy&tag=z')).toBe(true);
    expect(test('?q=zz&q=a&tag=x')).toBe(false);
    expect(test('?q=a+b&tag=x&debug')).toBe(false);
    expect(test('?q=ab&tag=x')).toBe(false);
    expect(test('?q=a+b')).toBe(false);
  });

  // A trusted Traefik says `wss` (`ws`) in the X-Forwarded-Proto of a WebSocket upgrade it took over TLS
  // (plain): a route of scheme https refused every WebSocket such a proxy forwarded.
  it("reads a trusted proxy's ws and wss as the http and https a WebSocket's handshake went over", () => {
    const https = compileConditions({ hosts: [], headers: [], query: [], scheme: 'https' })!;
    const http = compileConditions({ hosts: [], headers: [], query: [], scheme: 'http' })!;
    const test = (conditions: typeof https, scheme: string | undefined) =>
      conditions.test({ req: request, query: '', scheme }, false);
    expect(test(https, 'wss')).toBe(true);
    expect(test(https, 'WSS')).toBe(true);
    expect(test(https, 'ws')).toBe(false);
    expect(test(http, 'ws')).toBe(true);
    expect(test(http, 'wss')).toBe(false);
    expect(test(https, 'HTTPS')).toBe(true);
    expect(test(https, 'ftp')).toBe(false);
    expect(test(http, undefined)).toBe(false);
  });

  it('reads a parameter or header in every spelling an origin reads as its name', () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [{ name: 'x-debug', present: false }],
      query: [
        { name: 'role', exact: 'admin' },
        { name: 'debug', present: false },
      ],
    })!;
    const test = (query: string, headers: Record<string, string> = {}) =>
      conditions.test({ req: { headers: { ...request.headers, ...headers } }, query }, false);
    for (const spelling of ['Role', 'ROLE', 'role[]', 'role[0]', '%20role', '[role]', 'role]', 'r%6Fle']) {
      expect({ spelling, met: test(`?${spelling}=admin`) }).toEqual({ spelling, met: true });
    }
    // PHP reads a name as a C string, up to a NUL byte in it.
    for (const spelling of ['role%00', 'role%00x', 'Role%00[]', '%u0072ole', '!role']) {
      expect({ spelling, met: test(`?${spelling}=admin`) }).toEqual({ spelling, met: true });
    }
    expect(test('?role=admin&debug%00=1')).toBe(false);
    expect(test('?x=1;role=admin')).toBe(true);
    expect(test('?role=user&Role=admin')).toBe(true);
    // Neither another name nor an absent field in another spelling.
    expect(test('?roles=admin')).toBe(false);
    expect(test('?role_id=admin')).toBe(false);
    expect(test('?role=admin&Debug=1')).toBe(false);
    expect(test('?role=admin&debug[]=1')).toBe(false);
    expect(test('?role=admin&x=1;debug=1')).toBe(false);
    expect(test('?role=admin', { x_debug: '1' })).toBe(false);
    expect(test('?role=admin', { 'x-other': '1' })).toBe(true);
  });

  // PHP, Rails and Express (qs) fill the array `ids` from `ids[]=7`, `ids[0]=7` and `ids=7` alike: a
  // condition on `ids[]` reads that parameter, however the client spells it.
  it('reads a condition on a name given with [] in every spelling origins read as that name', () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [],
      query: [
        { name: 'ids[]', exact: '7' },
        { name: 'debug[]', present: false },
      ],
    })!;
    const test = (query: string) => conditions.test({ req: request, query }, false);
    for (const spelling of ['ids[]', 'ids[0]', 'ids[x]', 'ids', 'IDS%5B0%5D']) {
      expect({ spelling, met: test(`?${spelling}=7`) }).toEqual({ spelling, met: true });
    }
    for (const spelling of ['debug[]', 'debug[0]', 'debug']) {
      expect({ spelling, met: test(`?ids[]=7&${spelling}=1`) }).toEqual({ spelling, met: false });
    }
    expect(test('?idsx[]=7')).toBe(false);
  });

  // ASP.NET Core and Spring read `filter.status` as the `filter[status]` a dictionary binds (and as
  // `filter`'s); PHP stops a name at the `]` no `[` follows, Rack reads what follows as a key of its own;
  // Spring reads `filter['status']` as `filter[status]`.
  it('reads the spellings with `.`, quotes or text after a `]` that origins read as the name', () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [],
      query: [
        { name: 'filter[status]', exact: 'open' },
        { name: 'user', present: false },
      ],
    })!;
    const test = (query: string) => conditions.test({ req: request, query }, false);
    for (const spelling of [
      'filter.status',
      'Filter.Status',
      'filter[status]x',
      "filter['status']",
      'filter.status[]',
      'filter%u002estatus',
    ]) {
      expect({ spelling, met: test(`?${spelling}=open`) }).toEqual({ spelling, met: true });
    }
    for (const spelling of ['user.role', 'User.Roles[0]', 'user[role]x', 'user%u002Erole']) {
      expect({ spelling, met: test(`?filter[status]=open&${spelling}=admin`) }).toEqual({
        spelling,
        met: false,
      });
    }
    expect(test('?filter_status=open')).toBe(false);
    expect(test('?filter[status]=open&users.role=admin')).toBe(true);
  });

  // A name given with a `.` is PHP's `user_role` and the property ASP.NET Core and Spring bind, which
  // they also read from `user[role]`.
  it('reads a condition on a name given with `.` in the spellings of both readings', () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [],
      query: [
        { name: 'user.role', exact: 'admin' },
        { name: 'debug.trace', present: false },
      ],
    })!;
    const test = (query: string) => conditions.test({ req: request, query }, false);
    for (const spelling of [
      'user.role',
      'User.Role',
      'user_role',
      'user role',
      'user[role]',
      'USER[ROLE][]',
    ]) {
      expect({ spelling, met: test(`?${spelling}=admin`) }).toEqual({ spelling, met: true });
    }
    for (const spelling of ['debug.trace', 'debug_trace', 'debug[trace]']) {
      expect({ spelling, met: test(`?user.role=admin&${spelling}=1`) }).toEqual({ spelling, met: false });
    }
    expect(test('?user[roles]=admin')).toBe(false);
  });

  // Regression: a condition stored before commands refused it read the client's copy of a header the
  // gateway writes for the origin: `present: false` on X-Forwarded-For held for nearly every client.
  it('never meets a condition on a header the gateway writes for the origin, a preflight included', () => {
    for (const condition of [
      { name: 'X-Forwarded-For', present: false },
      { name: 'x_real_ip', prefix: '10.' },
      { name: 'X-VantageEdge-Auth-Kind', exact: 'service' },
    ]) {
      const conditions = compileConditions({ hosts: [], headers: [condition], query: [] })!;
      for (const headers of [{}, { 'x-real-ip': '10.0.0.1', 'x-vantageedge-auth-kind': 'service' }]) {
        const req = { headers } as unknown as IncomingMessage;
        for (const preflight of [false, true])
          expect(conditions.test({ req, query: '' }, preflight), condition.name).toBe(false);
      }
      expect(headersNeverMet({ hosts: [], headers: [condition], query: [] })).toEqual([condition.name]);
    }
    expect(
      headersNeverMet({ hosts: [], headers: [{ name: 'x-api-key', present: true }], query: [] }),
    ).toEqual([]);
  });

  // Regression: a condition on True-Client-IP or X-Forwarded-Ssl was met by a client's own copy, which
  // the gateway drops (it keeps them only from a trusted proxy): the origin never saw what chose its route.
  it('reads a header kept only from a trusted proxy on its requests alone, as the origin gets it', () => {
    const test = (
      condition: { name: string; exact?: string; present?: boolean },
      headers: object,
      peerTrusted?: boolean,
    ) =>
      compileConditions({ hosts: [], headers: [condition], query: [] })!.test(
        { req: { headers } as unknown as IncomingMessage, query: '', peerTrusted },
        false,
      );
    const office = { name: 'True-Client-IP', exact: '10.0.0.1' };
    expect(test(office, { 'true-client-ip': '10.0.0.1' })).toBe(false);
    expect(test(office, { 'true-client-ip': '10.0.0.1' }, false)).toBe(false);
    expect(test(office, { 'true-client-ip': '10.0.0.1' }, true)).toBe(true);
    // The gateway drops a trusted proxy's other spellings too.
    expect(test(office, { true_client_ip: '10.0.0.1' }, true)).toBe(false);
    expect(test({ name: 'x_forwarded_ssl', present: false }, { 'x-forwarded-ssl': 'on' })).toBe(true);
    expect(test({ name: 'x_forwarded_ssl', present: false }, { 'x-forwarded-ssl': 'on' }, true)).toBe(false);
  });

  it('reads a header the request names in Connection as not sent, but for the hop-by-hop ones', () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [
        { name: 'x-api-version', exact: '2' },
        { name: 'upgrade', exact: 'websocket' },
      ],
      query: [],
    })!;
    const test = (headers: Record<string, string>) =>
      conditions.test({ req: { headers: { ...request.headers, ...headers } }, query: '' }, false);
    const sent = { 'x-api-version': '2', upgrade: 'websocket' };
    expect(test({ ...sent, connection: 'Upgrade' })).toBe(true);
    expect(test({ ...sent, connection: 'keep-alive' })).toBe(true);
    expect(test({ ...sent, connection: 'upgrade, X-Api-Version' })).toBe(false);
    expect(test({ x_api_version: '2', upgrade: 'websocket', connection: 'upgrade, x-api-version' })).toBe(
      true,
    );
    expect(test({ ...sent, x_api_version: '1', connection: 'upgrade, x-api-version' })).toBe(false);
  });

  it("reads a condition on Host as the host the request is for, HTTP/2's :authority included", () => {
    const conditions = compileConditions({
      hosts: [],
      headers: [{ name: 'host', exact: 'beta.example.com' }],
      query: [],
    })!;
    const test = (headers: Record<string, string>) => conditions.test({ req: { headers }, query: '' }, false);
    expect(test({ host: 'beta.example.com' })).toBe(true);
    expect(test({ ':authority': 'beta.example.com' })).toBe(true);
    expect(test({ ':authority': 'shop.example.com' })).toBe(false);
    expect(
      requestValue(
        { kind: 'header', key: 'header:host', name: 'host' },
        {
          req: { headers: { ':authority': 'beta.example.com' } } as unknown as IncomingMessage,
          query: '',
        },
      ),
    ).toBe('beta.example.com');
  });

  it('visits the routes of every value a request sends in several spellings of a filed field', () => {
    const routes = Array.from({ length: 20 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/api/*',
        auth_mode: 'public',
        match: {
          headers: [{ name: 'x-variant', exact: `v${i}` }],
          query: [{ name: 'tier', exact: `t${i}` }],
        },
      }),
    }));
    const matcher = new RouteMatcher(routes);
    const resolve = (query: string, headers: Record<string, string>) =>
      matcher.resolve('GET', '/api/x', { facts: { req: { headers }, query }, preflight: false });
    expect(resolve('?Tier=t7', { 'x-variant': 'v7' })).toBe(routes[7]);
    expect(resolve('?tier[]=t7', { x_variant: 'v7' })).toBe(routes[7]);
    expect(resolve('?tier=t3&TIER=t7', { 'x-variant': 'v3', x_variant: 'v7' })).toBeDefined();
    expect(resolve('?tier=t3', { 'x-variant': 'v2', x_variant: 'v3' })).toBe(routes[3]);
  });

  /**
   * Regression test: each header condition gathered the request's every other spelling of its field
   * again (`x_a-b…` for X-A-B…: a name with n dashes has 2^n), once per distinct condition. A tenant's
   * 500 routes told apart by `x-a-b-c-d-e-f-g-h-i: exact <n>` and a client's 12 KB of its 511 other
   * spellings held a replica's event loop ≈ 100 ms per request. The spellings are read once per request.
   */
  it("reads a header's other spellings once per request, however many conditions name it", () => {
    const name = 'x-a-b-c-d-e-f-g-h-i';
    const routes = Array.from({ length: 500 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/api/*',
        auth_mode: 'public',
        match: { headers: [{ name, exact: `v${i}` }] },
      }),
    }));
    const matcher = new RouteMatcher(routes);
    const sent: Record<string, string> = { host: 'shop.example.com' };
    const dashes = name.split('-').length - 1;
    for (let underscores = 1; underscores < 2 ** dashes; underscores++) {
      let spelling = 'x';
      for (const [at, part] of name.split('-').slice(1).entries())
        spelling += `${(underscores >> at) & 1 ? '_' : '-'}${part}`;
      sent[spelling] = 'none';
    }
    sent.x_a_b_c_d_e_f_g_h_i = 'v321';
    let reads = 0;
    const headers = new Proxy(sent, {
      get(target, property) {
        reads++;
        return Reflect.get(target, property);
      },
    });
    const found = matcher.resolve('GET', '/api/x', {
      facts: { req: { headers }, query: '' },
      preflight: false,
    });
    expect(found).toBe(routes[321]);
    // Each spelling read a few times, not once per condition naming the field (500 × 512).
    expect(reads).toBeLessThan(10 * (Object.keys(sent).length + routes.length));
  });

  /**
   * Regression test: every route with query conditions parsed the request's whole query again, once
   * per candidate route and path reading. A tenant's 1,000 routes `/*` with query conditions and a
   * client's 16 KB query of 4,000 parameters held a replica's event loop (every tenant's traffic) for
   * ≈ 2 s per request. The query is read once per request; each condition is then one lookup.
   */
  it('reads the query once per request, however many routes carry query conditions', () => {
    const routes = Array.from({ length: 1_000 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/*',
        // A stricter last route makes the matcher try every reading of the path (case, ;params, slash).
        auth_mode: i === 999 ? 'apikey_required' : 'public',
        ...(i === 999 ? {} : { match: { query: [{ name: `q${i}`, exact: 'x' }] } }),
      }),
    }));
    const matcher = new RouteMatcher(routes);
    const query = `?request=${randomUUID()}&${'a=1&'.repeat(4_000)}`;
    vi.mocked(rawQueryPairs).mockClear();
    const found = matcher.resolve('GET', '/A/b;x/', { facts: { req: request, query }, preflight: false });
    expect(found).toBe(routes[999]);
    expect(rawQueryPairs).toHaveBeenCalledTimes(1);
  });
  /**
   * Regression test: a query condition compared the request's every value of its parameter, once per
   * candidate route and path reading. 1,000 routes `/*` with a prefix condition on `q` and a client's
   * 16 KB query repeating `q=y` 4,000 times held a replica's event loop ≈ 350 ms per request (HEAD,
   * `/A/b;x/`). Each condition is now a lookup in the parameter's values, sorted once per request.
   */
  it('compares a query condition with a few of the values, however often the client repeats the name', () => {
    const routes = Array.from({ length: 1_000 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/*',
        auth_mode: i === 999 ? 'apikey_required' : 'public',
        ...(i === 999 ? {} : { match: { query: [{ name: 'q', prefix: `zz${i}` }] } }),
      }),
    }));
    const matcher = new RouteMatcher(routes);
    const comparisons = (repeats: number) => {
      const query = `?request=${randomUUID()}&${'q=y&'.repeat(repeats)}`;
      const startsWith = String.prototype.startsWith;
      let calls = 0;
      String.prototype.startsWith = function (this: string, ...args: Parameters<typeof startsWith>) {
        calls++;
        return startsWith.apply(this, args);
      };
      try {
        const found = matcher.resolve('HEAD', '/A/b;x/', {
          facts: { req: request, query },
          preflight: false,
        });
        expect(found).toBe(routes[999]);
      } finally {
        String.prototype.startsWith = startsWith;
      }
      return calls;
    };
    expect(comparisons(4_000)).toBeLessThanOrEqual(comparisons(1) * 2);
  });

  /**
   * Regression test: a header condition on a field node gives as an array (Set-Cookie, sent by a
   * client on many lines) joined the lines again for every candidate route and path reading: 1,000
   * routes and 1,900 lines, ≈ 370 ms per request. The lines are joined once per request.
   */
  it('joins a header sent on many lines once per request, however many routes test it', () => {
    const routes = Array.from({ length: 1_000 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/*',
        auth_mode: i === 999 ? 'apikey_required' : 'public',
        ...(i === 999 ? {} : { match: { headers: [{ name: 'set-cookie', prefix: `zz${i}` }] } }),
      }),
    }));
    const matcher = new RouteMatcher(routes);
    const lines = Array.from({ length: 1_900 }, () => 'a=bcdefg');
    const req = { headers: { host: 'shop.example.com', 'set-cookie': lines } } as unknown as IncomingMessage;
    const join = Array.prototype.join;
    let joins = 0;
    Array.prototype.join = function (this: unknown[], separator?: string) {
      if (this === lines) joins++;
      return join.call(this, separator);
    };
    try {
      const found = matcher.resolve('HEAD', '/A/b;x/', { facts: { req, query: '' }, preflight: false });
      expect(found).toBe(routes[999]);
    } finally {
      Array.prototype.join = join;
    }
    expect(joins).toBeLessThanOrEqual(1);
  });

  /**
   * Regression test: a route's conditions were tested again for every reading of the path (case,
   * `;params`, trailing slash) and for HEAD also as GET, though they never depend on either: 1,000
   * routes `/*` with conditions cost ≈ 24,000 condition tests (≈ 8 ms of a replica's event loop) per
   * request. Each route's conditions are tested at most once per request.
   */
  it("tests each route's conditions at most once per request, whatever the path readings", () => {
    const routes = Array.from({ length: 1_000 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/*',
        auth_mode: i === 999 ? 'apikey_required' : 'public',
        ...(i === 999 ? {} : { match: { headers: [{ name: 'x-variant', exact: `v${i}` }] } }),
      }),
    }));
    const matcher = new RouteMatcher(routes);
    let tests = 0;
    const headers = { host: 'shop.example.com' };
    Object.defineProperty(headers, 'x-variant', {
      enumerable: true,
      get: () => {
        tests++;
        return 'none';
      },
    });
    const req = { headers } as unknown as IncomingMessage;
    const found = matcher.resolve('HEAD', '/A/b;x/', { facts: { req, query: '' }, preflight: false });
    expect(found).toBe(routes[999]);
    expect(tests).toBeLessThanOrEqual(999);
  });
});

/**
 * Regression test: prefix conditions compared with String.prototype.startsWith, which V8 runs character
 * by character (≈ 14 µs for a 400-character prefix, 35 times an equality of the same length). A tenant's
 * 1,000 routes on one path with 10 header prefix conditions of 400 characters each made one request
 * that met all but the last cost ≈ 150 ms of a replica's event loop. A prefix is compared as one string.
 */
describe('prefix conditions at their longest', () => {
  it('compare each prefix as a whole string, never character by character', () => {
    const prefix = 'v'.repeat(400);
    const headers: Record<string, string> = { host: 'shop.example.com' };
    for (let k = 0; k < 10; k++) headers[`x-h${k}`] = `${prefix}${k}`;
    const routes = Array.from({ length: 1_000 }, (_, i) => ({
      config: routeConfig.parse({
        id: randomUUID(),
        origin_id: randomUUID(),
        path_pattern: '/api/*',
        auth_mode: 'public',
        match: {
          headers: Array.from({ length: 10 }, (_, k) => ({ name: `x-h${k}`, prefix })),
          query: [{ name: 'tag', exact: `t${i}` }],
        },
      }),
    }));
    const matcher = new RouteMatcher(routes);
    const req = { headers } as unknown as IncomingMessage;
    const startsWith = String.prototype.startsWith;
    let charByChar = 0;
    String.prototype.startsWith = function counted(this: string, ...args: Parameters<typeof startsWith>) {
      charByChar++;
      return startsWith.apply(this, args);
    };
    let found: unknown;
    try {
      found = matcher.match('GET', '/api/x', { facts: { req, query: '?tag=t999' }, preflight: false });
    } finally {
      String.prototype.startsWith = startsWith;
    }
    expect(found).toBe(routes[999]);
    expect(charByChar).toBe(0);
  });
});

/**
 * Regression test: each route tested its own copy of every condition. A tenant's 1,000 routes `/api/*`
 * sharing a host, nine 400-character header prefixes and ten query conditions, each route with one
 * header value of its own that the request lacks, cost ≈ 20,000 condition tests (≈ 13 ms of a
 * replica's event loop) per request. Conditions several routes share are tested once per request.
 */
describe('conditions shared by many routes', () => {
  const longValue = 'v'.repeat(400);
  const shared = {
    hosts: ['shop.example.com'],
    headers: Array.from({ length: 9 }, (_, k) => ({ name: `x-shared-${k}`, prefix: longValue })),
    query: Array.from({ length: 10 }, (_, k) => ({ name: `q${k}`, exact: 'yes' })),
  };
  const routes = Array.from({ length: 1_000 }, (_, i) => ({
    config: routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/api/*',
      auth_mode: 'public',
      match: { ...shared, headers: [...shared.headers, { name: 'x-route', exact: `r${i}` }] },
    }),
  }));
  const fallback = {
    config: routeConfig.parse({
      id: randomUUID(),
      origin_id: randomUUID(),
      path_pattern: '/api/*',
      auth_mode: 'public',
    }),
  };

  /** A request whose headers count how often a route's conditions read one of them. */
  function countingRequest(headers: Record<string, string>) {
    let reads = 0;
    const counted = new Proxy(headers, {
      get(target, name) {
        reads++;
        return Reflect.get(target, name);
      },
    });
    return { req: { headers: counted } as unknown as IncomingMessage, reads: () => reads };
  }

  it('tests each distinct condition once per request, and still takes the route whose conditions hold', () => {
    // Every route visited (filed by x-route, a request without a route's value would visit none).
    const matcher = new RouteMatcher([...routes, fallback], null, { indexConditionValues: false });
    const headers: Record<string, string> = { host: 'shop.example.com', 'x-route': 'none' };
    for (let k = 0; k < 9; k++) headers[`x-shared-${k}`] = `${longValue}!`;
    const query = `?${Array.from({ length: 10 }, (_, k) => `q${k}=yes`).join('&')}`;

    const missing = countingRequest(headers);
    const tested = matcher.conditionTests;
    const found = matcher.resolve('GET', '/api/orders', {
      facts: { req: missing.req, query },
      preflight: false,
    });
    expect(found).toBe(fallback);
    // At most one read per distinct condition (a host, 9 shared headers, 1,000 values of x-route), not
    // 1,000 × 11.
    expect(missing.reads()).toBeLessThanOrEqual(1_010 + 10);
    // Each route's own x-route value is tested first: the conditions every route shares are not needed.
    expect(matcher.conditionTests - tested).toBe(1_000);

    // Each field is read from the request once, however many conditions test it: 1,000 values of x-route
    // were 1,000 reads of the request's headers (≈0.4 µs each, 500 conditions ≈200 µs per request).
    const fieldsRead = countingRequest(headers);
    matcher.resolve('GET', '/api/orders', { facts: { req: fieldsRead.req, query }, preflight: false });
    expect(fieldsRead.reads()).toBeLessThanOrEqual(50);

    const chosen = countingRequest({ ...headers, 'x-route': 'r500' });
    expect(
      matcher.resolve('GET', '/api/orders', { facts: { req: chosen.req, query }, preflight: false }),
    ).toBe(routes[500]);
  });
});
