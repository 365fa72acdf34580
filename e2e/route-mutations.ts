// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax

/**
 * Edge values for the fields of a route command: valid documents mutated one field at a time, at and
 * one past each limit, empty, duplicated, in odd Unicode and odd numbers. The command-to-gateway
 * differential test (e2e/command-compile-differential.int.test.ts) sends them through the admin API.
 */

/** A field of the route body (dot path) and the value it is given. */
export interface RouteMutation {
  readonly field: string;
  readonly value: unknown;
}

/** The origins a route may name: the route's own, another of the tenant, and one nobody has. */
export interface MutationOrigins {
  readonly main: string;
  readonly other: string;
  readonly unknown: string;
}

const repeat = <T>(count: number, make: (index: number) => T): T[] =>
  Array.from({ length: count }, (_, index) => make(index));

const NUMBERS = [0, -0, 1, 1.5, -1, 1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER];
const ODD_TEXT = [
  '',
  ' ',
  'e\u0301', // NFD é
  '\u00e9', // NFC é
  '\uff41', // fullwidth a
  '\u202e', // right-to-left override
  '\u2028', // line separator
  '\u0085',
  '日本',
  '\t',
];

export function routeMutations(origins: MutationOrigins): RouteMutation[] {
  const of = (field: string, values: readonly unknown[]) => values.map((value) => ({ field, value }));
  const split = (entries: ReadonlyArray<readonly [string, number]>, extra: object = {}) => ({
    origins: entries.map(([origin_id, weight]) => ({ origin_id, weight })),
    ...extra,
  });
  return [
    ...of('path_pattern', [
      '/',
      '/*',
      '/a/*',
      '/:id',
      '/:id/:id',
      '/:id/:ID',
      '/a/:id/*',
      '/*/a',
      '/a*',
      '/*a',
      '/a/**',
      '/%2A',
      '/%2F',
      '/%2f/x',
      '/%2e%2e',
      '/%2E',
      '/.../x',
      '/a;b',
      '/..;x',
      '/%zz',
      '/%4',
      '/%41',
      '/%7e',
      '/%00',
      '/%5C',
      '/%C3%A9',
      '/\u00e9',
      '/e\u0301',
      '/\uff41',
      '/\u202e',
      '/\u2028',
      '/a//b',
      '/a/',
      '',
      'a',
      '/:',
      '/:1a',
      `/${'a'.repeat(511)}`,
      `/${'a'.repeat(512)}`,
      `/${repeat(255, () => 'a').join('/')}`,
    ]),
    ...of('methods', [
      [],
      ['GET', 'GET'],
      ['get'],
      ['TRACE'],
      ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
    ]),
    ...of('priority', [...NUMBERS, 10_000, 10_001, -10_000, -10_001, '1', null]),
    ...of('strip_prefix', [
      '/',
      '/a',
      '/a/',
      '/a%zz',
      '/a%2',
      '/a%00',
      '/a\\b',
      '/a"b',
      '/a{b}',
      '/日本',
      '/\u00e9',
      '/a/../b',
      '/./a',
      '//a',
      '/%2F',
      '/..;/a',
      `/${'a'.repeat(199)}`,
      `/${'a'.repeat(200)}`,
      '/a?b',
      '',
    ]),
    ...of('match', [
      { hosts: [] },
      { hosts: ['fz.localhost'] },
      { hosts: ['FZ.LOCALHOST'] },
      { hosts: ['fz.localhost', 'fz.localhost'] },
      { hosts: ['elsewhere.example.com'] },
      { hosts: ['fz.localhost.'] },
      {
        headers: [
          { name: 'X-A', exact: '1' },
          { name: 'x-a', exact: '1' },
        ],
      },
      { headers: [{ name: 'x-a', prefix: '' }] },
      { headers: [{ name: 'x-a', exact: '' }] },
      { headers: [{ name: 'x-a' }] },
      { headers: [{ name: 'x-a', exact: '1', present: true }] },
      { headers: [{ name: 'x-vantageedge-user', present: true }] },
      { headers: [{ name: 'x a', present: true }] },
      { headers: [{ name: 'x-a', exact: '\u2028' }] },
      { headers: [{ name: 'x-a', exact: '\u00e9' }] },
      { headers: [{ name: 'x-a', exact: '日本' }] },
      { headers: repeat(10, (i) => ({ name: `x-h${i}`, present: true })) },
      { headers: repeat(11, (i) => ({ name: `x-h${i}`, present: true })) },
      { query: [{ name: 'a', exact: '' }] },
      { query: [{ name: 'a[]', present: false }] },
      { query: [{ name: 'a b', present: true }] },
      {
        query: [
          { name: 'A', exact: '1' },
          { name: 'a', exact: '2' },
        ],
      },
      { query: [{ name: 'a', exact: '%zz' }] },
      { query: [{ name: 'a', exact: '日本' }] },
      {},
    ]),
    ...of('cors', [
      { allow_origins: ['*'], allow_credentials: true },
      { allow_origins: ['*'] },
      { allow_origins: ['https://*.example.com'] },
      { allow_origins: ['HTTPS://APP.EXAMPLE.COM'] },
      { allow_origins: ['https://app.example.com', 'https://APP.example.com'] },
      { allow_origins: [] },
      { allow_origins: ['https://\uff41.com'] },
      { allow_origins: ['https://app.example.com:99999'] },
      { allow_origins: ['null'] },
      { allow_origins: repeat(50, (i) => `https://a${i}.example.com`) },
      { allow_origins: repeat(51, (i) => `https://a${i}.example.com`) },
      { allow_origins: ['*'], allow_headers: ['X-A', 'x-a'], expose_headers: ['X-B', 'x-b'] },
      { allow_origins: ['*'], allow_methods: ['GET', 'GET'] },
      { allow_origins: ['*'], max_age_seconds: -0 },
      { allow_origins: ['*'], max_age_seconds: 86_401 },
      { allow_origins: ['*'], max_age_seconds: 1.5 },
    ]),
    ...of('ip_rules', [
      { allow: ['0.0.0.0/0'] },
      { allow: ['::/0'] },
      { deny: ['0.0.0.0/0'], allow: ['0.0.0.0/0'] },
      { allow: ['::ffff:10.0.0.1'] },
      { allow: ['::ffff:10.0.0.0/104'] },
      { allow: ['::ffff:0:0/96'] },
      { allow: ['10.0.0.1/33'] },
      { allow: ['10.0.0.0/08'] },
      { allow: ['10.0.0.0/8', '10.0.0.0/8'] },
      { allow: ['10.0.0.0/8'], deny: ['10.0.0.0/8'] },
      { allow: ['fe80::1%eth0'] },
      { allow: ['fe80::1%eth0/64'] },
      { allow: ['1.2.3.4 '] },
      { allow: ['010.0.0.1'] },
      { allow: ['1.2.3'] },
      { allow: ['::1/129'] },
      { allow: ['::1/-1'] },
      { allow: ['2001:db8::/32', '2001:DB8::/32'] },
      { allow: ['::ffff:1.2.3.4/128'] },
      { allow: ['0::ffff:1.2.3.4/120'] },
      { allow: repeat(200, (i) => `10.0.${i}.0/24`) },
      { allow: repeat(201, (i) => `10.0.${i % 256}.${i >> 8}`) },
      {},
    ]),
    ...of('request_headers', [
      { set: { 'X-A': '1', 'x-a': '2' } },
      { set: { 'x-a': '${unknown}' } },
      { set: { 'x-a': '${client_ip' } },
      { set: { 'x-a': '${}' } },
      { set: { 'x-a': '$${client_ip}}' } },
      { set: { 'x-a': '\u2028' } },
      { set: { 'x-a': '\u00e9' } },
      { set: { 'x-a': '日本' } },
      { set: { 'x-a': '\u0085' } },
      { set: { 'x-a': 'a'.repeat(1000) } },
      { set: { 'x-a': 'a'.repeat(1001) } },
      { set: JSON.parse('{"__proto__":"x"}') },
      { set: { host: 'x' } },
      { set: { 'X-Forwarded-For': 'x' } },
      { set: { 'x-a': '1' }, remove: ['x-a'] },
      { set: { 'x-a': '1' }, add: { 'X-A': '2' } },
      { remove: ['X-A', 'x-a'] },
      { set: Object.fromEntries(repeat(30, (i) => [`x-h${i}`, String(i)])) },
      { set: Object.fromEntries(repeat(31, (i) => [`x-h${i}`, String(i)])) },
      { set: { 'x a': '1' } },
      { set: { '': '1' } },
      {},
    ]),
    ...of('response_headers', [
      { set: { 'set-cookie': 'a=b' } },
      { set: { 'Set-Cookie': 'a=b' } },
      { add: { 'SET-COOKIE': 'a=b' } },
      { remove: ['set-cookie'] },
      { set: { 'x-a': '${route_id}' }, remove: ['X-A'] },
      { set: { 'Content-Length': '1' } },
      { set: { 'alt-svc': 'h3=":443"' } },
      { set: { 'x-a': '${path}' } },
    ]),
    ...of('rewrite_path', [
      { template: '/:id' },
      { template: '/x/*' },
      { template: '/*' },
      { template: '/a/*/b' },
      { template: '/a*' },
      { template: '/:id/:id' },
      { template: '/a%zz' },
      { template: '/a%2F' },
      { template: '/' },
      { template: '/a/../b' },
      { from_prefix: '/a', to_prefix: '/' },
      { from_prefix: '/', to_prefix: '/v2' },
      { from_prefix: '/a%zz', to_prefix: '/b' },
      { from_prefix: '/%7Ea', to_prefix: '/b' },
      { from_prefix: '/a', to_prefix: '/b%zz' },
      { from_prefix: '/a' },
      { to_prefix: '/a' },
      { template: '/a', from_prefix: '/a', to_prefix: '/b' },
      {},
    ]),
    ...of('query', [
      { set: { a: '${route_id}' } },
      { set: { A: '1', a: '2' } },
      { set: { a: '${nope}' } },
      { set: { 'a b': '1' } },
      { set: { a: '&b=c' } },
      { set: { a: '日本' } },
      { remove: ['a', 'a'] },
      { add: { constructor: '1' } },
    ]),
    ...of('timeouts', [
      { connect_ms: 0 },
      { connect_ms: 60_000 },
      { connect_ms: 60_001 },
      { idle_ms: 1.5 },
      { response_headers_ms: 300_000 },
      { response_headers_ms: 300_001 },
      {},
    ]),
    ...of('retries', [
      { attempts: 5 },
      { attempts: 6 },
      { attempts: 1 },
      { on: [] },
      { on: ['503', '503'] },
      { methods: ['POST'] },
      { methods: [] },
      { backoff: { base_ms: 10, max_ms: 5 } },
      { backoff: { base_ms: 0, max_ms: 0 } },
      { budget: { percent: 0.5 } },
      { budget: { percent: 100 } },
      { budget: { percent: 1e308 } },
      { budget: { min_retries: 1000 } },
      {},
    ]),
    ...of('max_body_bytes', [0, -0, 1024 * 1024 * 1024, 1024 * 1024 * 1024 + 1, 1.5, -1]),
    ...of('max_header_bytes', [255, 256, 1024 * 1024, 1024 * 1024 + 1]),
    ...of('traffic_split', [
      split([
        [origins.main, 0],
        [origins.other, 0],
      ]),
      split([
        [origins.main, 1],
        [origins.other, 0],
      ]),
      split([
        [origins.main, 1000],
        [origins.other, 1000],
      ]),
      split([
        [origins.main, 1001],
        [origins.other, 1],
      ]),
      split([[origins.main, 1]]),
      split([
        [origins.main, 1],
        [origins.main, 1],
      ]),
      split([
        [origins.main, 1],
        [origins.unknown, 1],
      ]),
      split([
        [origins.other, 1],
        [origins.unknown, 1],
      ]),
      split(
        [
          [origins.main, 1],
          [origins.other, 1],
        ],
        { overrides: [{ header: 'x-canary', value: 'on', origin_id: origins.unknown }] },
      ),
      split(
        [
          [origins.main, 1],
          [origins.other, 1],
        ],
        { overrides: [{ header: 'x-canary', cookie: 'c', value: 'on', origin_id: origins.other }] },
      ),
      split(
        [
          [origins.main, 1],
          [origins.other, 1],
        ],
        { sticky: { header: 'X-User', cookie: 'u' } },
      ),
      split(
        [
          [origins.main, 1],
          [origins.other, 1],
        ],
        { sticky: { cookie: 'a b' } },
      ),
      split(repeat(11, () => [origins.main, 1] as const)),
    ]),
    ...of('fixed_response', [
      { status: 204, body: 'x' },
      { status: 200, headers: { 'content-type': 'x' } },
      { status: 200, headers: { 'X-A': '1', 'x-a': '2' } },
      { status: 200, content_type: '' },
      { status: 200, body: 'a'.repeat(65_536) },
      { status: 200, body: 'a'.repeat(65_537) },
      { status: 199 },
      { status: 600 },
      { status: 200.5 },
      { status: 200, body: '\u2028\u202e\u0000' },
      { status: 200, headers: { connection: 'close' } },
    ]),
    ...of('redirect', [
      { location: '${path}' },
      { location: '${unknown}' },
      { location: 'https://x.example${path}${query}' },
      { location: '${host}${host}' },
      { location: ' ' },
      { location: '/a\u00e9' },
      { location: '/', status: 300 },
      { location: '/', status: 308 },
    ]),
    ...of('rate_limit', [
      { requests_per_second: 0 },
      { requests_per_second: 1e308 },
      { requests_per_second: 0.001, burst: 1_000_000 },
      { requests_per_second: 1, scope: 'ip' },
      { requests_per_second: 1, algorithm: 'sliding_window', window_seconds: 3600, limit: 1 },
      { requests_per_second: 1, window_seconds: 60 },
      { requests_per_second: -0 },
      { requests_per_second: 2 ** 53 + 1 },
    ]),
    ...of('cache_policy', [
      { ttl_seconds: 0 },
      { cache_key_pattern: 'path+query+headers', vary_headers: ['X-A', 'x-a'] },
      { cache_key_pattern: 'path+query+headers', vary_headers: ['x a'] },
      { cache_key_pattern: 'path+query+headers', vary_headers: ['X-Real-IP'] },
      { cacheable_statuses: [206] },
      { cacheable_statuses: [] },
      { bypass: { headers: ['x a'], cookies: [''], query_params: ['日本'] } },
      { tag_headers: ['a b'] },
    ]),
    ...of('origin_id', [origins.other, origins.unknown, null, 'not-a-uuid']),
    ...of('auth_mode', ['nope', 'service', 'jwt_required']),
    ...of('required_scopes', [
      [],
      ['a', 'a'],
      [''],
      ['a b'],
      repeat(50, (i) => `s${i}`),
      repeat(51, (i) => `s${i}`),
    ]),
    ...of('websocket_token', ['query', 'cookie']),
    ...of('allow_any_authenticated_user', [true]),
    ...of('unknown_field', [1]),
    ...ODD_TEXT.map((value) => ({ field: 'request_headers', value: { add: { 'x-odd': value } } })),
    ...ODD_TEXT.map((value) => ({ field: 'path_pattern', value: `/odd/${value}` })),
  ];
}

/** `body` with `mutation` applied: `field` is a top-level member of the route body. */
export function mutated(body: Record<string, unknown>, mutation: RouteMutation): Record<string, unknown> {
  return { ...body, [mutation.field]: mutation.value };
}
