import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { normalizePath } from '@vantageedge/shared/routing/normalize-path';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatewaySettings } from '../settings.js';
import { type GatewayReplica, startGatewayReplica } from '../start-gateway-replica.js';
import { startTestOrigin, type TestOrigin } from '../testing/gateway-harness.js';
import { errorCodeOf, type RawResponse, rawExchange, rawExchangeInPieces } from '../testing/raw-exchange.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';

/**
 * Differential fuzzing of the HTTP/1.1 request path with hostile raw requests. A real replica serves two
 * tenants with a matrix of routes (prefix, `:param`, wildcard, strip_prefix, rewrite_path, host, header
 * and query conditions, methods, auth modes, cache); raw clients send request lines and headers mutated
 * as attackers do (percent-encodings, dot segments, `;` parameters, backslashes, absolute-form targets,
 * Host spellings, conflicting framing, obs-fold, long fields, odd methods and versions, Expect,
 * pipelining), at once or, one case in twenty, in pieces with short pauses between them. Per case, against a reference model of hosts, routes and what each route sends its origin:
 *  (a) an answer (or a clean close) within a deadline, never 5xx (the origins never fail), and no
 *      origin request the client did not send (smuggled behind a body);
 *  (b) forwarded only to the tenant whose host the Host names;
 *  (c) the route chosen for a path is the route chosen for its normalised form (sent as a second request),
 *      and the origin gets what that route makes of the normalised path, never a dot segment or a
 *      refused escape;
 *  (d) every refusal is a 4xx with an `error.code`;
 *  (e) key-protected routes, and paths an origin would read as theirs, are never reached without the key.
 * Seeded: the same cases every run (DIFFERENTIAL_CASES explores more).
 */
const SEED = 20_261_203;
const CASES = Number(process.env['DIFFERENTIAL_CASES'] ?? 20_000);
const DEADLINE_MS = 6_000;
const PEPPER = 'hostile-requests-pepper-0123456789abcdef';
const ALPHA_KEY = 've_live_hostile_alpha_key_000000000000';
const BETA_KEY = 've_live_hostile_beta_key_0000000000000';
const ALPHA_HOSTS = ['alpha.localhost', 'alpha-shop.example'];
const BETA_HOSTS = ['beta.localhost'];

type TenantName = 'alpha' | 'beta';

/** A route of the matrix and what its origin must receive for a normalised request path. */
interface RouteSpec {
  tenant: TenantName;
  keyed: boolean;
  route: TestRoute;
  forwarded: (path: string) => string;
}

const same = (path: string) => path;
const withoutPrefix = (prefix: string) => (path: string) =>
  path === prefix ? '/' : path.startsWith(`${prefix}/`) ? path.slice(prefix.length) : path;

function routeMatrix(alphaOrigin: string, betaOrigin: string): Map<string, RouteSpec> {
  const alpha = (route: Omit<TestRoute, 'origin_id'>, forwarded = same, keyed = false): RouteSpec => ({
    tenant: 'alpha',
    keyed,
    route: { id: randomUUID(), origin_id: alphaOrigin, ...route },
    forwarded,
  });
  const specs: RouteSpec[] = [
    alpha({ path_pattern: '/pub/*' }),
    alpha({ path_pattern: '/pub/admin/*', auth_mode: 'apikey_required' }, same, true),
    alpha({ path_pattern: '/users/:id', methods: ['GET', 'HEAD'] }),
    alpha({ path_pattern: '/users/:id/*', rewrite_path: { template: '/accounts/:id/*' } }, (path) => {
      const segments = path.split('/');
      const rest = segments.length > 3 ? `/${segments.slice(3).join('/')}` : '';
      return `/accounts/${segments[2]}${rest}`;
    }),
    alpha({ path_pattern: '/strip/*', strip_prefix: '/strip' }, withoutPrefix('/strip')),
    alpha(
      { path_pattern: '/legacy/*', rewrite_path: { from_prefix: '/legacy', to_prefix: '/v2' } },
      (path) => (path === '/legacy' ? '/v2' : `/v2${path.slice('/legacy'.length)}`),
    ),
    alpha({ path_pattern: '/files*' }),
    alpha({ path_pattern: '/cached/*', cache_policy: { ttl_seconds: 30 } }),
    alpha({ path_pattern: '/host-only/*', match: { hosts: ['alpha-shop.example'] } }),
    alpha({
      path_pattern: '/variant/*',
      match: { headers: [{ name: 'x-variant', exact: 'beta' }], query: [{ name: 'v', exact: '2' }] },
    }),
    alpha({ path_pattern: '/variant/*' }),
    alpha({ path_pattern: '/jwt/*', auth_mode: 'jwt_required' }, same, true),
    alpha(
      { path_pattern: '/secure/*', auth_mode: 'apikey_required', strip_prefix: '/secure' },
      withoutPrefix('/secure'),
      true,
    ),
    alpha({ path_pattern: '/methods/*', methods: ['POST'] }),
    {
      tenant: 'beta',
      keyed: false,
      route: { id: randomUUID(), origin_id: betaOrigin, path_pattern: '/*' },
      forwarded: same,
    },
  ];
  return new Map(specs.map((spec) => [spec.route.id!, spec]));
}

// ---- the requests ----

interface HostileRequest {
  method: string;
  target: { form: 'origin' | 'absolute' | 'absolute-userinfo' | 'asterisk' | 'authority'; host: string };
  path: string;
  query: string;
  version: string;
  hostLines: string[];
  auth: keyof typeof AUTH_LINES;
  variant: keyof typeof VARIANT_LINES;
  framing: keyof typeof FRAMINGS;
  extra: keyof typeof EXTRA_LINES;
  pipelined: boolean;
  /**
   * How the client writes the case's bytes: at once, or cut where these per-mille shares of them fall,
   * with `pauseMs` between the pieces (a head in parts, a body after its head, a pipelined request later).
   */
  delivery: { cuts: number[]; pauseMs: number };
}

const AUTH_LINES = {
  none: [],
  alpha: [`X-Api-Key: ${ALPHA_KEY}`],
  'alpha-bearer': [`Authorization: Bearer ${ALPHA_KEY}`],
  'alpha-twice': [`x-api-key: ${ALPHA_KEY}`, `X-API-KEY: ${ALPHA_KEY}`],
  beta: [`x-api-key: ${BETA_KEY}`],
  wrong: ['x-api-key: ve_live_not_a_key_of_anyone_0000000000'],
} as const;

const VARIANT_LINES = {
  none: [],
  beta: ['X-Variant: beta'],
  upper: ['X-Variant: BETA'],
  twice: ['X-Variant: beta', 'X-Variant: beta'],
  padded: ['X-Variant:   beta   '],
} as const;

const CHUNKED_BODY = '3\r\nabc\r\n0\r\n\r\n';
const FRAMINGS: Record<string, { lines: readonly string[]; body: string }> = {
  none: { lines: [], body: '' },
  'content-length': { lines: ['Content-Length: 3'], body: 'abc' },
  'content-length-zero': { lines: ['Content-Length: 0'], body: '' },
  'content-length-twice': { lines: ['Content-Length: 3', 'Content-Length: 3'], body: 'abc' },
  'content-length-list': { lines: ['Content-Length: 3, 3'], body: 'abc' },
  'content-length-conflict': { lines: ['Content-Length: 3', 'Content-Length: 4'], body: 'abcd' },
  'content-length-negative': { lines: ['Content-Length: -1'], body: '' },
  'content-length-plus': { lines: ['Content-Length: +3'], body: 'abc' },
  'content-length-hex': { lines: ['Content-Length: 0x3'], body: 'abc' },
  chunked: { lines: ['Transfer-Encoding: chunked'], body: CHUNKED_BODY },
  'chunked-upper': { lines: ['Transfer-Encoding: CHUNKED'], body: CHUNKED_BODY },
  'chunked-and-length': { lines: ['Transfer-Encoding: chunked', 'Content-Length: 3'], body: CHUNKED_BODY },
  'chunked-twice': {
    lines: ['Transfer-Encoding: chunked', 'Transfer-Encoding: chunked'],
    body: CHUNKED_BODY,
  },
  'identity-chunked': { lines: ['Transfer-Encoding: identity, chunked'], body: CHUNKED_BODY },
  'chunked-space-before-colon': { lines: ['Transfer-Encoding : chunked'], body: CHUNKED_BODY },
  'chunked-tab': { lines: ['Transfer-Encoding:\tchunked'], body: CHUNKED_BODY },
  'chunked-folded': { lines: ['Transfer-Encoding: identity', ' chunked'], body: CHUNKED_BODY },
  'chunked-bad-size': { lines: ['Transfer-Encoding: chunked'], body: 'zz\r\nabc\r\n0\r\n\r\n' },
};

const LONG = 'v'.repeat(20_000);
const EXTRA_LINES: Record<string, readonly string[]> = {
  none: [],
  'obs-fold': ['X-Folded: first', ' second'],
  'long-value': [`X-Long: ${LONG}`],
  'long-name': [`X-${'n'.repeat(20_000)}: 1`],
  'expect-continue': ['Expect: 100-continue'],
  'expect-other': ['Expect: 200-ok'],
  'space-before-colon': ['X-Spaced : 1'],
  'original-url': ['X-Original-URL: /pub/admin/x', 'X-Rewrite-URL: /pub/admin/x'],
  'forwarded-host': ['X-Forwarded-Host: beta.localhost', 'Forwarded: host=beta.localhost'],
  'utf8-value': [latin1OfUtf8('X-Name: é漢')],
  'nul-value': ['X-Nul: a\u0000b'],
  'connection-names-key': ['Connection: x-api-key'],
  websocket: [
    'Connection: Upgrade',
    'Upgrade: websocket',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  ],
  'upgrade-h2c': ['Connection: Upgrade, HTTP2-Settings', 'Upgrade: h2c', 'HTTP2-Settings: AAMAAABkAAQAAP__'],
};

/** A UTF-8 string as the latin1 string of its bytes (what the socket writes). */
function latin1OfUtf8(text: string): string {
  return Buffer.from(text, 'utf8').toString('latin1');
}

const HOST_NAMES = [
  'alpha.localhost',
  'alpha-shop.example',
  'beta.localhost',
  'gamma.localhost',
  'localhost',
  'x.alpha.localhost',
  'alpha.localhost.evil.example',
];

const hostSpelling = fc.constantFrom(
  (host: string) => host,
  (host: string) => host,
  (host: string) => host,
  (host: string) => host.toUpperCase(),
  (host: string) => host.replace(/^./, (c) => c.toUpperCase()),
  (host: string) => `${host}.`,
  (host: string) => `${host}:8080`,
  (host: string) => `${host}.:80`,
  (host: string) => `${host}:`,
  (host: string) => `${host}..`,
  (host: string) => latin1OfUtf8(host.replace('a', 'а')), // Cyrillic а
  (host: string) => `xn--${host}`,
  (host: string) => `user@${host}`,
  (host: string) => `${host}:80@beta.localhost`,
  (host: string) => `beta.localhost, ${host}`,
  (host: string) => `${host}\t`,
  (host: string) => `${host}/pub`,
  (host: string) => `[${host}]`,
);

const spelledHost = fc
  .tuple(fc.constantFrom(...HOST_NAMES), hostSpelling)
  .map(([host, spell]) => spell(host));

const hostLines = fc.oneof(
  {
    weight: 24,
    arbitrary: fc.constantFrom(...ALPHA_HOSTS, ...ALPHA_HOSTS, ...BETA_HOSTS).map((host) => [host]),
  },
  { weight: 6, arbitrary: spelledHost.map((host) => [host]) },
  { weight: 1, arbitrary: fc.constant<string[]>([]) },
  { weight: 1, arbitrary: fc.constant([''] as string[]) },
  { weight: 2, arbitrary: fc.tuple(spelledHost, spelledHost) },
  { weight: 1, arbitrary: spelledHost.map((host) => [host, host]) },
);

const ROUTE_BASES = [
  '/pub',
  '/pub/admin',
  '/PUB/admin',
  '/pub/ADMIN',
  '/users',
  '/strip',
  '/legacy',
  '/files',
  '/filesx',
  '/cached',
  '/host-only',
  '/variant',
  '/jwt',
  '/secure',
  '/methods',
  '/',
  '',
];
const WORDS = ['a', 'b', 'x1', 'admin', 'Admin', 'ADMIN', 'secure', 'strip', 'users', 'v2', 'pub', 'jwt'];
const HOSTILE_SEGMENTS = [
  '.',
  '..',
  '%2e',
  '%2E%2e',
  '.%2e',
  '%2e.',
  '..;',
  '..;x=1',
  '.;',
  '%2e%2e;',
  'a;b=c',
  'admin;x=1',
  ';',
  '%2f',
  '%2F',
  '%5c',
  '%5C',
  '%00',
  '%25',
  '%252e%252e',
  '%252f',
  '%c0%ae%c0%ae',
  '%c0%af',
  '%e0%80%ae',
  '%ff',
  '%',
  '%g1',
  '%C3%A9',
  '%7e',
  '%61dmin',
  '%41DMIN',
  '%2561dmin',
  '',
  '*',
  '#frag',
  '@',
  ':id',
  'a%20b',
  '%09',
];
/** Segments node's parser refuses in a request line (it takes the other hostile ones to the gateway). */
const UNPARSEABLE_SEGMENTS = [latin1OfUtf8('é'), '\u0080', '"', '{}', '..\\', '\\'];
const pathSegment = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 8, arbitrary: fc.constantFrom(...HOSTILE_SEGMENTS) },
  { weight: 1, arbitrary: fc.constantFrom(...UNPARSEABLE_SEGMENTS) },
);
const requestPath = fc
  .tuple(
    fc.constantFrom(...ROUTE_BASES),
    fc.array(fc.tuple(mostly('/', ['//', '\\', '/./', '/;x/', '/../', '/%2e%2e/'], 12), pathSegment), {
      maxLength: 4,
    }),
    mostly('', ['/', '/', '/.', '/..', ';', '%2F', '/;'], 4),
  )
  .map(([base, rest, tail]) => base + rest.map(([join, segment]) => join + segment).join('') + tail);

/** Mostly `usual`; one case in `1 + weight` something else: most cases mutate one or two parts. */
function mostly<T>(usual: T, others: readonly T[], weight = 9): fc.Arbitrary<T> {
  return fc.oneof(
    { weight, arbitrary: fc.constant(usual) },
    { weight: 1, arbitrary: fc.constantFrom(...others) },
  );
}

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.record({
  method: mostly(
    'GET',
    ['HEAD', 'HEAD', 'POST', 'POST', 'PUT', 'DELETE', 'OPTIONS'].concat([
      'get',
      'Get',
      'post',
      'TRACE',
      'PROPFIND',
      'M-SEARCH',
      'CONNECT',
    ]),
    4,
  ),
  target: fc.record({
    form: mostly<HostileRequest['target']['form']>('origin', [
      'absolute',
      'absolute',
      'absolute-userinfo',
      'asterisk',
      'authority',
    ]),
    host: fc.constantFrom(...HOST_NAMES),
  }),
  path: requestPath,
  query: mostly('', ['?v=2', '?v=2', '?v=2&v=3', '?V=2', '?v=%32', '?a=b#c', '?q="x"', '?x=%00', '?'], 2),
  version: mostly('HTTP/1.1', ['HTTP/1.0', 'HTTP/1.0', 'http/1.1', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.9'], 15),
  hostLines,
  auth: mostly<HostileRequest['auth']>('none', Object.keys(AUTH_LINES) as Array<keyof typeof AUTH_LINES>, 2),
  variant: mostly<HostileRequest['variant']>(
    'none',
    Object.keys(VARIANT_LINES) as Array<keyof typeof VARIANT_LINES>,
    1,
  ),
  framing: mostly('none', Object.keys(FRAMINGS), 6),
  extra: mostly('none', Object.keys(EXTRA_LINES), 6),
  pipelined: mostly(false, [true], 3),
  delivery: fc.oneof(
    { weight: 19, arbitrary: fc.constant<HostileRequest['delivery']>({ cuts: [], pauseMs: 0 }) },
    {
      weight: 1,
      arbitrary: fc.record({
        // Per mille of the bytes: fc.double would pick among all doubles alike, nearly all of them tiny.
        cuts: fc.array(fc.integer({ min: 1, max: 999 }), { minLength: 1, maxLength: 3 }),
        pauseMs: fc.integer({ min: 1, max: 10 }),
      }),
    },
  ),
});

/** The case's bytes in the pieces its delivery cuts them into. */
function piecesOf(bytes: Buffer, delivery: HostileRequest['delivery']): Buffer[] {
  const at = [...new Set(delivery.cuts.map((cut) => Math.floor((cut / 1000) * bytes.length)))]
    .filter((index) => index > 0 && index < bytes.length)
    .sort((a, b) => a - b);
  return [0, ...at].map((start, i) => bytes.subarray(start, at[i] ?? bytes.length));
}

function requestTarget(request: HostileRequest, path: string): string {
  switch (request.target.form) {
    case 'origin':
      return path + request.query;
    case 'absolute':
      return `http://${request.target.host}${path}${request.query}`;
    case 'absolute-userinfo':
      return `http://alpha.localhost@${request.target.host}${path}${request.query}`;
    case 'asterisk':
      return '*';
    case 'authority':
      return `${request.target.host}:80`;
  }
}

const PIPELINED_PATH = '/pipelined/behind';

/**
 * The request's bytes (with `path` as its path and `requestId` as its X-Request-Id, which the gateway
 * passes to the origin), then the pipelined request (`<requestId>-behind`) when there is one.
 */
function requestBytes(request: HostileRequest, path: string, requestId: string): Buffer {
  const framing = FRAMINGS[request.framing]!;
  const lines = [
    `${request.method} ${requestTarget(request, path)} ${request.version}`,
    ...request.hostLines.map((host) => `Host: ${host}`),
    ...AUTH_LINES[request.auth],
    ...VARIANT_LINES[request.variant],
    ...EXTRA_LINES[request.extra]!,
    ...framing.lines,
    `X-Request-Id: ${requestId}`,
    ...(request.pipelined ? [] : ['Connection: close']),
  ];
  let text = `${lines.join('\r\n')}\r\n\r\n${framing.body}`;
  if (request.pipelined) {
    text +=
      `GET ${PIPELINED_PATH} HTTP/1.1\r\nHost: beta.localhost\r\nX-Request-Id: ${requestId}-behind\r\n` +
      'Connection: close\r\n\r\n';
  }
  return Buffer.from(text, 'latin1');
}

// ---- the reference model ----

const TENANT_OF_HOST = new Map<string, TenantName>([
  ...ALPHA_HOSTS.map((host) => [host, 'alpha'] as const),
  ...BETA_HOSTS.map((host) => [host, 'beta'] as const),
]);

/** The tenant a request's Host lines name: exactly one line, a DNS name with an optional port and dot. */
function tenantOfHostLines(lines: readonly string[]): TenantName | undefined {
  if (lines.length !== 1) return undefined;
  const name = /^([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)\.?(?::[0-9]*)?$/.exec(lines[0]!.trim())?.[1];
  return name === undefined ? undefined : TENANT_OF_HOST.get(name.toLowerCase());
}

/**
 * The Host lines the gateway routes `request` by: an HTTP/1.0 request without one by its absolute-form
 * target's authority (absolute-form.ts; HTTP/1.1 must send Host).
 */
function hostLinesAsRead(request: HostileRequest): readonly string[] {
  const byTarget =
    request.hostLines.length === 0 && request.version === 'HTTP/1.0' && request.target.form === 'absolute';
  return byTarget ? [request.target.host] : request.hostLines;
}

/** The key the request presents, read as an origin would: the one tenant it belongs to. */
function keyTenant(request: HostileRequest): TenantName | undefined {
  if (request.auth === 'beta') return 'beta';
  return request.auth.startsWith('alpha') ? 'alpha' : undefined;
}

/** The path as a lenient origin reads it: letters in any case, `;` parameters dropped, normalised. */
function lenientReading(path: string): string {
  const withoutParameters = path
    .split('/')
    .map((segment) => segment.split(';')[0])
    .join('/');
  const normalized = normalizePath(withoutParameters, 'keep');
  return (normalized.ok ? normalized.path : withoutParameters).toLowerCase();
}

const KEYED_PREFIXES = ['/pub/admin', '/secure', '/jwt'];
const underPrefix = (path: string, prefix: string) => path === prefix || path.startsWith(`${prefix}/`);

/** One segment of a forwarded path an origin would resolve or decode into a separator. */
const UNSAFE_FORWARDED = /(^|\/)\.\.?(\/|$)|%2f|%5c|%00|\\/i;

/** A request as an origin received it (from the origin's record, or a cached answer's echo of it). */
interface ForwardedRequest {
  tenant: TenantName;
  url: string;
  headers: Record<string, string | string[] | undefined>;
}

function echoOf(response: RawResponse): ForwardedRequest | undefined {
  if (response.status !== 200 || !response.body.startsWith('{"origin"')) return undefined;
  const echo = JSON.parse(response.body) as {
    origin: string;
    url: string;
    headers: ForwardedRequest['headers'];
  };
  return { tenant: echo.origin === 'alpha-origin' ? 'alpha' : 'beta', url: echo.url, headers: echo.headers };
}

const routeIdOf = (forwarded: ForwardedRequest) => String(forwarded.headers['x-vantageedge-route-id']);

/** What a case came to: the route that forwarded it, or the refusal. */
function outcomeOf(forwarded: ForwardedRequest | undefined, response: RawResponse | undefined): string {
  if (forwarded !== undefined) return `route ${routeIdOf(forwarded)}`;
  if (response === undefined) return 'no answer';
  return `${response.status} ${errorCodeOf(response) ?? ''}`;
}

// ---- the replica ----

let alphaOrigin: TestOrigin;
let betaOrigin: TestOrigin;
let replica: GatewayReplica;
let routes: Map<string, RouteSpec>;
const tenantIds = new Map<TenantName, string>();

beforeAll(async () => {
  alphaOrigin = await startTestOrigin('alpha-origin');
  betaOrigin = await startTestOrigin('beta-origin');
  const alphaOriginId = randomUUID();
  const betaOriginId = randomUUID();
  routes = routeMatrix(alphaOriginId, betaOriginId);
  const routesOf = (tenant: TenantName) =>
    [...routes.values()].filter((spec) => spec.tenant === tenant).map((spec) => spec.route);
  const snapshots = [
    buildSnapshot({
      subdomain: 'alpha',
      customDomains: ['alpha-shop.example'],
      origins: [{ id: alphaOriginId, targets: [alphaOrigin.url] }],
      routes: routesOf('alpha'),
      apiKeys: [{ key_hash: hashApiKey(PEPPER, ALPHA_KEY) }],
    }),
    buildSnapshot({
      subdomain: 'beta',
      origins: [{ id: betaOriginId, targets: [betaOrigin.url] }],
      routes: routesOf('beta'),
      apiKeys: [{ key_hash: hashApiKey(PEPPER, BETA_KEY) }],
    }),
  ];
  tenantIds.set('alpha', snapshots[0]!.tenant_id);
  tenantIds.set('beta', snapshots[1]!.tenant_id);
  const config = parseSettings(
    { ...configPlaneSettings, ...gatewaySettings },
    {
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      API_KEY_PEPPER: PEPPER,
      GATEWAY_HEADERS_TIMEOUT_MS: '2000',
      GATEWAY_REQUEST_TIMEOUT_MS: '3000',
      GATEWAY_KEEP_ALIVE_TIMEOUT_MS: '1000',
      // Every case is one client: failed keys must stay 401, not become 429.
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
      ROLLOUT_KEY_PREFIX: `hostile-requests:${randomUUID()}:`,
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
    },
  );
  const quiet = new Writable({ write: (_chunk, _encoding, callback) => callback() });
  const bus = createInMemorySnapshotBus();
  await bus.publish(
    snapshots.map((snapshot) => ({
      kind: 'snapshot' as const,
      tenantId: snapshot.tenant_id,
      version: BigInt(snapshot.version),
      snapshot,
    })),
  );
  replica = await startGatewayReplica({
    config,
    bus,
    registry: createMetricsRegistry('hostile-requests'),
    logger: createLogger({ service: 'hostile-requests', stream: quiet }),
    accessLogSink: { write: (_batch, done) => done() },
  });
  await replica.configPlane.ready;
  for (const snapshot of snapshots) await replica.responseCache.prepareTenant(snapshot.tenant_id);
}, 60_000);

afterAll(async () => {
  await replica?.close();
  await alphaOrigin?.close();
  await betaOrigin?.close();
});

// ---- the invariants ----

function label(request: HostileRequest): string {
  return JSON.stringify(request).slice(0, 600);
}

/** What is wrong with the answer to `request` (the first request of the case). */
function answerProblems(request: HostileRequest, response: RawResponse): string[] {
  const problems: string[] = [];
  if (response.status >= 500) {
    problems.push(`answered ${response.statusLine} ${response.body.slice(0, 200)}`);
  }
  if (response.status >= 400 && request.method !== 'HEAD' && errorCodeOf(response) === undefined) {
    problems.push(`refused ${response.statusLine} without an error.code: ${response.body.slice(0, 100)}`);
  }
  return problems;
}

/**
 * The path the gateway reads from `request`'s target: an absolute-form target without one names `/`
 * (RFC 9110 §4.2.3), as `GET http://beta.localhost HTTP/1.1` asks for beta's `/`.
 */
function pathAsRead(request: HostileRequest): string {
  return request.target.form === 'absolute' && request.path === '' ? '/' : request.path;
}

/** What is wrong with forwarding `request` as `forwarded` (the reference model of routes and hosts). */
function forwardingProblems(request: HostileRequest, forwarded: ForwardedRequest): string[] {
  const spec = routes.get(routeIdOf(forwarded));
  if (spec === undefined) return [`forwarded without a known route: ${JSON.stringify(forwarded)}`];
  const problems: string[] = [];
  const hostTenant = tenantOfHostLines(hostLinesAsRead(request));
  if (spec.tenant !== hostTenant) problems.push(`forwarded to ${spec.tenant} for Host ${request.hostLines}`);
  if (forwarded.tenant !== spec.tenant)
    problems.push(`${forwarded.tenant}'s origin got ${spec.tenant}'s route`);
  if (forwarded.headers['x-vantageedge-tenant-id'] !== tenantIds.get(spec.tenant)) {
    problems.push(`origin of ${spec.tenant} got tenant ${forwarded.headers['x-vantageedge-tenant-id']}`);
  }
  if (request.target.form !== 'origin') {
    const authority = request.target.form.startsWith('absolute') ? request.target.host : undefined;
    if (authority === undefined || TENANT_OF_HOST.get(authority) !== spec.tenant) {
      problems.push(`forwarded a ${request.target.form}-form target naming ${request.target.host}`);
    }
  }
  const normalized = normalizePath(pathAsRead(request));
  if (!normalized.ok) {
    problems.push(`forwarded a path the gateway refuses (${normalized.reason}) as ${forwarded.url}`);
    return problems;
  }
  const forwardedPath = forwarded.url.split('?')[0]!;
  const expected = spec.forwarded(normalized.path);
  if (forwardedPath !== expected) {
    problems.push(`route ${spec.route.path_pattern} sent ${forwardedPath}, expected ${expected}`);
  }
  if (UNSAFE_FORWARDED.test(forwardedPath)) problems.push(`origin got ${forwardedPath}`);
  const hasKey = keyTenant(request) === spec.tenant;
  if (spec.keyed && !hasKey) problems.push(`${spec.route.path_pattern} reached without its key`);
  if (spec.tenant === 'alpha' && !hasKey) {
    const reading = lenientReading(normalized.path);
    const protectedPrefix = KEYED_PREFIXES.find((prefix) => underPrefix(reading, prefix));
    if (protectedPrefix !== undefined) {
      problems.push(
        `${normalized.path} reached ${spec.route.path_pattern} without the key of ${protectedPrefix}`,
      );
    }
  }
  const methods = spec.route.methods;
  if (methods !== undefined && !methods.includes(request.method)) {
    problems.push(`${request.method} reached ${spec.route.path_pattern}, which takes ${methods}`);
  }
  const hosts = (spec.route.match as { hosts?: string[] } | undefined)?.hosts;
  if (hosts !== undefined && !hosts.includes(hostOf(request))) {
    problems.push(`${spec.route.path_pattern} reached on host ${request.hostLines}`);
  }
  return problems;
}

function hostOf(request: HostileRequest): string {
  return (hostLinesAsRead(request)[0] ?? '')
    .trim()
    .toLowerCase()
    .replace(/\.?(:[0-9]*)?$/, '');
}

let nextCase = 0;
/** Routes some request was forwarded by. */
const routesReached = new Set<string>();

/** One exchange, with what the origins received during it. */
async function exchangeWithOrigins(
  port: number,
  bytes: Buffer,
  methods: readonly string[],
  delivery: HostileRequest['delivery'],
) {
  const [alphaBefore, betaBefore] = [alphaOrigin.seen.length, betaOrigin.seen.length];
  const exchange =
    delivery.cuts.length === 0
      ? await rawExchange(port, bytes, methods, DEADLINE_MS)
      : await rawExchangeInPieces(port, piecesOf(bytes, delivery), delivery.pauseMs, methods, DEADLINE_MS);
  const received: ForwardedRequest[] = [
    ...alphaOrigin.seen.slice(alphaBefore).map((seen) => ({ tenant: 'alpha' as const, ...seen })),
    ...betaOrigin.seen.slice(betaBefore).map((seen) => ({ tenant: 'beta' as const, ...seen })),
  ];
  for (const seen of received) routesReached.add(routeIdOf(seen));
  const byRequestId = (id: string) => received.find((seen) => seen.headers['x-request-id'] === id);
  return { exchange, received, byRequestId };
}

async function caseProblems(port: number, request: HostileRequest): Promise<string[]> {
  const id = `case-${nextCase++}`;
  const methods = request.pipelined ? [request.method, 'GET'] : [request.method];
  const { exchange, received, byRequestId } = await exchangeWithOrigins(
    port,
    requestBytes(request, request.path, id),
    methods,
    request.delivery,
  );
  const problems: string[] = [];
  if (!exchange.closed) problems.push('the connection neither answered in full nor closed in time');
  for (const seen of received) {
    const requestId = String(seen.headers['x-request-id']);
    if (requestId !== id && requestId !== `${id}-behind`) {
      problems.push(`the origin got a request the client never sent: ${seen.url} (${requestId})`);
    }
  }
  const [first, behind] = exchange.responses;
  const forwarded = byRequestId(id) ?? (first === undefined ? undefined : echoOf(first));
  if (forwarded !== undefined) problems.push(...forwardingProblems(request, forwarded));
  if (first === undefined) {
    problems.push(`no answer (received ${JSON.stringify(exchange.unread.slice(0, 120))})`);
    return problems;
  }
  problems.push(...answerProblems(request, first));
  const forwardedBehind = byRequestId(`${id}-behind`);
  if (forwardedBehind !== undefined && forwardedBehind.url !== PIPELINED_PATH) {
    problems.push(`the pipelined request reached the origin as ${forwardedBehind.url}`);
  }
  if (behind !== undefined && behind.status >= 500) {
    problems.push(`the pipelined request got ${behind.statusLine}`);
  }
  // The normalised spelling of the path must be handled as the path itself.
  const normalized = normalizePath(request.path);
  // node's parser refuses bytes outside printable ASCII in a request line before the gateway reads it.
  const parserRefuses = /[^\x21-\x7e]/.test(request.path);
  if (
    normalized.ok &&
    normalized.path !== request.path &&
    request.target.form === 'origin' &&
    !parserRefuses
  ) {
    const controlId = `${id}-normalised`;
    const control = await exchangeWithOrigins(
      port,
      requestBytes({ ...request, pipelined: false }, normalized.path, controlId),
      [request.method],
      request.delivery,
    );
    const controlForwarded =
      control.byRequestId(controlId) ??
      (control.exchange.responses[0] === undefined ? undefined : echoOf(control.exchange.responses[0]));
    const [raw, plain] = [
      outcomeOf(forwarded, first),
      outcomeOf(controlForwarded, control.exchange.responses[0]),
    ];
    if (raw !== plain) problems.push(`${request.path} → ${raw}, but ${normalized.path} → ${plain}`);
  }
  return problems;
}

describe('hostile raw HTTP/1.1 requests against a replica with two tenants', () => {
  it('routes, forwards and refuses every mutated request as the reference model allows', async () => {
    const port = replica.gateway.trafficPort;
    const cases = fc.sample(hostileRequest, { seed: SEED, numRuns: CASES, unbiased: true });
    const problems = new Map<string, string>();
    for (const request of cases) {
      for (const problem of await caseProblems(port, request)) {
        const kind = problem.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 80);
        if (!problems.has(kind)) problems.set(kind, `${problem}\n    case ${label(request)}`);
      }
    }
    // The model must have been exercised: every route forwarded some case, not only refusals.
    expect(routesReached.size).toBeGreaterThanOrEqual(routes.size - 1); // /jwt/* has no key to pass
    expect([...problems.values()]).toEqual([]);
  }, 300_000);
});
