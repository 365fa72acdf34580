import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import { gatewaySettings } from '@vantageedge/gateway/settings';
import { type GatewayReplica, startGatewayReplica } from '@vantageedge/gateway/start-gateway-replica';
import { startTestOrigin, TEST_PEPPER, type TestOrigin } from '@vantageedge/gateway/testing/gateway-harness';
import { errorCodeOf, type RawResponse, rawExchange } from '@vantageedge/gateway/testing/raw-exchange';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import { createTestRedis, scanKeys, type TestRedis } from '@vantageedge/shared/testing/redis';
import { outsideTheUtcDaysLast } from '@vantageedge/shared/testing/utc-day';
import { RedisQuotaStore } from '@vantageedge/shared/usage/quota-store';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replicaSnapshot } from './compile-differential.js';
import { type ExplainedRequest, explainBody, requestBytes } from './explained-requests.js';

/**
 * Differential of explain's rate limits and cache against a gateway replica that counts and caches in
 * the shared Redis (under this file's own key prefix), as in production. One tenant's routes carry
 * rate limits (scopes ip, api_key, route; on public and key-protected routes) and cache policies
 * (override mode with vary headers and bypass headers, cookies and query parameters; the `path` key
 * pattern; standard mode; per caller on a key-protected route; Origin in the key on a CORS route).
 * - Rate limits: a generated sequence of requests (client addresses, API keys as header or bearer,
 *   wrong or empty keys, paths, methods) from empty counters; the gateway must answer 429 exactly when
 *   the requests before it that explain says reach the limit stage used up a counter explain gives this
 *   request too.
 * - Cache: a generated pair of requests to one URL family; the first is repeated until the gateway
 *   answers it from the cache (if it ever does); the second is then a HIT exactly when explain gives
 *   both the same key and says both look the cache up. A request explain says bypasses the cache gets
 *   X-Cache: BYPASS, one on a route without a cache policy no X-Cache at all, and neither is ever a HIT.
 * - Quotas: a second tenant with a daily quota, API keys with daily and monthly quotas (and one without),
 *   on a key-protected, a public and a fixed-response route; a generated sequence of requests from empty
 *   counters. Explain, which reads the counters the replica counts in (never spending them), must name
 *   the counters the request spends with the counts the requests before it left there, and say 429
 *   quota_exceeded exactly when the gateway refuses it so; a request the gateway serves under a quota
 *   carries the X-Quota-Remaining those counts leave.
 * Seeded: the same cases every run (DIFFERENTIAL_CASES explores more).
 */

const SEED = 20_261_205;
const CASES = Number(process.env['DIFFERENTIAL_CASES'] ?? 60);
const DEADLINE_MS = 6_000;
const HOST = 'exl.localhost';
/** Every limit's burst, with a refill so slow no token comes back during a run. */
const BURST = 2;
/** Stages that answer before the rate limit (the gateway's order: … → auth → rate limit → cache). */
const BEFORE_LIMITS = new Set(['host', 'method', 'path', 'route', 'ip_rules', 'cors', 'auth']);
/** Stages that answer before the quota (… → auth → fixed response, redirect → rate limit → quota). */
const BEFORE_QUOTA = new Set([...BEFORE_LIMITS, 'fixed_response', 'redirect', 'rate_limit']);
const QUOTA_HOST = 'exq.localhost';
/** The metered tenant's daily quota, and its keys' (METERED: per day; METERED2: per month; FREE: none). */
const TENANT_QUOTA = 5;
const KEY_QUOTAS: Record<string, Record<string, number> | null> = {
  METERED: { requests_per_day: 2 },
  METERED2: { requests_per_month: 3 },
  FREE: null,
};

let cp: ControlPlaneHarness;
let replica: GatewayReplica;
let redis: TestRedis;
let origin: TestOrigin;
let tenantId = '';
let meteredTenantId = '';
const apiKeys = new Map<string, string>();

function routeBodies(originId: string, otherOriginId: string): Record<string, Record<string, unknown>> {
  const route = (body: Record<string, unknown>) => ({ auth_mode: 'public', origin_id: originId, ...body });
  const limit = (scope: string) => ({ requests_per_second: 0.001, burst: BURST, scope });
  const override = { mode: 'override', ttl_seconds: 300 };
  return {
    'limit-ip': route({ path_pattern: '/li/*', rate_limit: limit('ip') }),
    'limit-key': route({ path_pattern: '/lk/*', rate_limit: limit('api_key') }),
    'limit-key-required': route({
      path_pattern: '/lkr/*',
      auth_mode: 'apikey_required',
      rate_limit: limit('api_key'),
    }),
    'limit-route': route({ path_pattern: '/lr/*', rate_limit: limit('route') }),
    'cache-override': route({
      path_pattern: '/co/*',
      cache_policy: {
        ...override,
        cache_key_pattern: 'path+query+headers',
        vary_headers: ['X-Lang'],
        bypass: { headers: ['x-debug'], cookies: ['nocache'], query_params: ['fresh'] },
      },
    }),
    'cache-path': route({ path_pattern: '/cp/*', cache_policy: { ...override, cache_key_pattern: 'path' } }),
    'cache-standard': route({ path_pattern: '/cs/*', cache_policy: { ttl_seconds: 300 } }),
    'cache-keyed': route({ path_pattern: '/ck/*', auth_mode: 'apikey_required', cache_policy: override }),
    'cache-cors': route({
      path_pattern: '/cc/*',
      cors: { allow_origins: ['https://app.example'] },
      cache_policy: override,
    }),
    'cache-limited': route({ path_pattern: '/cl/*', rate_limit: limit('ip'), cache_policy: override }),
    // The cache reads the request as the route's transforms leave it.
    'cache-transformed': route({
      path_pattern: '/cqt/*',
      cache_policy: { ...override, bypass: { headers: ['x-debug'], query_params: ['preview'] } },
      request_headers: { remove: ['x-debug'] },
      query: { remove: ['utm_source', 'preview'] },
    }),
    // The route authenticates to its origin: the gateway drops a client's own X-Api-Key line first.
    'cache-upstream-key': route({
      path_pattern: '/cuk/*',
      cache_policy: { ...override, cache_key_pattern: 'path+query+headers', vary_headers: ['x-api-key'] },
      request_headers: { add: { 'x-api-key': 'upstream-key' } },
    }),
    // Each origin of the split answers for itself: the key holds the origin the split chose.
    'cache-split': route({
      path_pattern: '/csp/*',
      cache_policy: override,
      traffic_split: {
        origins: [
          { origin_id: originId, weight: 3 },
          { origin_id: otherOriginId, weight: 1 },
        ],
        overrides: [{ header: 'x-canary', value: 'on', origin_id: otherOriginId }],
      },
    }),
    plain: route({ path_pattern: '/*', priority: -1 }),
  };
}

/** The metered tenant: its quota, its keys' quotas, and routes that do and do not read keys. */
async function createMeteredTenant(): Promise<void> {
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'Metered', subdomain: 'exq', settings: { quota: { requests_per_day: TENANT_QUOTA } } },
  });
  meteredTenantId = json(tenant)['id'] as string;
  const created = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: meteredTenantId, name: 'origin', url: origin.url },
  });
  const originId = json(created)['id'] as string;
  const routes = [
    { path_pattern: '/qk/*', auth_mode: 'apikey_required' },
    { path_pattern: '/qo/*', auth_mode: 'public' },
    { path_pattern: '/qf/*', auth_mode: 'public', fixed_response: { status: 200, body: 'ok' } },
  ];
  for (const body of routes) {
    const route = await cp.request('POST', '/api/v1/routes', {
      body: { tenant_id: meteredTenantId, origin_id: originId, ...body },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(201);
  }
  for (const [name, quota] of Object.entries(KEY_QUOTAS)) {
    const issued = await cp.request('POST', '/api/v1/api-keys', {
      body: { tenant_id: meteredTenantId, name, quota },
    });
    expect(issued.status, JSON.stringify(issued.body)).toBe(201);
    apiKeys.set(name, json(issued)['key'] as string);
  }
}

beforeAll(async () => {
  redis = createTestRedis('explain-limits-cache');
  cp = await startControlPlane({
    withReadSide: true,
    adminRateLimits: { limits: { tenantCommands: null, userRequests: null } },
    // The gateways' quota counters, as the control plane reads them (the replica's prefix).
    quotaCounters: { store: new RedisQuotaStore(redis.client), keyPrefix: redis.prefix },
  });
  origin = await startTestOrigin('origin');
  const tenant = await cp.request('POST', '/api/v1/tenants', { body: { name: 'Limited', subdomain: 'exl' } });
  tenantId = json(tenant)['id'] as string;
  const created = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'origin', url: origin.url },
  });
  const originId = json(created)['id'] as string;
  const other = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'other', url: origin.url },
  });
  const otherOriginId = json(other)['id'] as string;
  for (const [name, body] of Object.entries(routeBodies(originId, otherOriginId))) {
    const route = await cp.request('POST', '/api/v1/routes', { body: { tenant_id: tenantId, ...body } });
    expect(route.status, `${name}: ${JSON.stringify(route.body)}`).toBe(201);
  }
  for (const name of ['KEY', 'KEY2']) {
    const issued = await cp.request('POST', '/api/v1/api-keys', { body: { tenant_id: tenantId, name } });
    apiKeys.set(name, json(issued)['key'] as string);
  }
  await createMeteredTenant();
  await cp.readModelsCaughtUp();
  const events = await cp.allEvents();
  const snapshotOf = (id: string) =>
    replicaSnapshot(events, id, (_event, message) => {
      throw new Error(`the snapshot projector refuses an event: ${message}`);
    });
  const [snapshot, meteredSnapshot] = [snapshotOf(tenantId), snapshotOf(meteredTenantId)];

  const config = parseSettings(
    { ...configPlaneSettings, ...gatewaySettings },
    {
      GATEWAY_PORT: '0',
      GATEWAY_ADMIN_PORT: '0',
      GATEWAY_HOST: '127.0.0.1',
      API_KEY_PEPPER: TEST_PEPPER,
      GATEWAY_REDIS_KEY_PREFIX: redis.prefix,
      ROLLOUT_KEY_PREFIX: `${redis.prefix}rollout:`,
      GATEWAY_AUTH_FAILURES_PER_MINUTE: '0',
      ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
    },
  );
  const bus = createInMemorySnapshotBus();
  await bus.publish([
    { kind: 'snapshot', tenantId, version: BigInt(snapshot.version), snapshot },
    {
      kind: 'snapshot',
      tenantId: meteredTenantId,
      version: BigInt(meteredSnapshot.version),
      snapshot: meteredSnapshot,
    },
  ]);
  replica = await startGatewayReplica({
    config,
    bus,
    redis: redis.client,
    registry: createMetricsRegistry('explain-limits-cache'),
    logger: createLogger({ service: 'explain-limits-cache', level: 'error' }),
    accessLogSink: { write: (_batch, done) => done() },
  });
  await replica.configPlane.ready;
  await replica.responseCache.prepareTenant(tenantId);
}, 120_000);

afterAll(async () => {
  await replica?.close();
  await origin?.close();
  await redis?.cleanup();
  await cp?.close();
});

// ---- requests ----

/** Placeholders for the tenant's keys (KEY2 first: KEY is a prefix of it). */
const withKeys = (value: string) =>
  value.replace('KEY2', apiKeys.get('KEY2') ?? '').replace('KEY', apiKeys.get('KEY') ?? '');
/** Placeholders for the metered tenant's keys (METERED2 first: METERED is a prefix of it). */
const withMeteredKeys = (value: string) =>
  value
    .replace('METERED2', apiKeys.get('METERED2') ?? '')
    .replace('METERED', apiKeys.get('METERED') ?? '')
    .replace('FREE', apiKeys.get('FREE') ?? '');

const HEADER_GROUPS: Record<string, ReadonlyArray<readonly [string, string]>> = {
  key: [['x-api-key', 'KEY']],
  'key-bearer': [['Authorization', 'Bearer KEY']],
  key2: [['X-Api-Key', 'KEY2']],
  'key-wrong': [['x-api-key', 've_live_not_a_key_of_anyone_0000000000']],
  'key-empty': [['x-api-key', '']],
  lang: [['x-lang', 'en']],
  'lang-other': [['X-Lang', 'fr']],
  'lang-twice': [
    ['x-lang', 'en'],
    ['x-lang', 'fr'],
  ],
  'lang-cgi': [['X_Lang', 'en']],
  debug: [['x-debug', '1']],
  'debug-cgi': [['X_Debug', '1']],
  'cookie-nocache': [['cookie', 'nocache=1']],
  'cookie-nocache-second-line': [
    ['cookie', 'theme=dark'],
    ['cookie', 'nocache=1'],
  ],
  'cookie-other': [['cookie', 'theme=dark']],
  'no-cache': [['cache-control', 'no-cache']],
  'no-store': [['Cache-Control', 'no-store']],
  pragma: [['pragma', 'no-cache']],
  'origin-allowed': [['origin', 'https://app.example']],
  'origin-other': [['origin', 'https://other.example']],
  'content-length': [['content-length', '0']],
};

const headerLines = (maxLength: number) =>
  fc
    .uniqueArray(fc.constantFrom(...Object.keys(HEADER_GROUPS)), { maxLength })
    .map((groups) => groups.flatMap((group) => HEADER_GROUPS[group]!));

const TAILS = ['', '/x', '/X', '/./x', '/a/../x', '//x', '/x/', '/%78'];
const QUERIES = [
  '',
  '?a=1&b=2',
  '?b=2&a=1',
  '?a=1',
  '?A=1',
  '?a=1&a=2',
  '?a=2&a=1',
  '?fresh=1',
  '?fresh',
  '?a%3D1',
  // A credential the `path` key leaves out: the answer is stored only with the origin's consent.
  '?api_key=k1',
  '?a=1;Access_Token=t1',
];
const HOSTS = [HOST, 'EXL.localhost', `${HOST}:80`, `${HOST}.`];

/** A request to `base`/<case>`tail`. */
interface RequestShape extends Omit<ExplainedRequest, 'path'> {
  base: string;
  tail: string;
}

const requestUnder = (bases: readonly string[], methods: readonly string[]): fc.Arbitrary<RequestShape> =>
  fc.record({
    base: fc.constantFrom(...bases),
    tail: fc.constantFrom(...TAILS),
    method: fc.constantFrom(...methods),
    host: fc.oneof({ weight: 3, arbitrary: fc.constant(HOST) }, fc.constantFrom(...HOSTS)),
    query: fc.oneof({ weight: 2, arbitrary: fc.constant('') }, fc.constantFrom(...QUERIES)),
    lines: headerLines(2),
  });

/** `arbitrary`'s value one time in three, else undefined (leave it as it was). */
const sometimes = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 2, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });

/** Some of a request's parts changed (each part one time in three; undefined ones are left out). */
const changeOf = (
  bases: readonly string[],
  methods: readonly string[],
): fc.Arbitrary<Partial<RequestShape>> =>
  fc
    .record({
      base: fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, fc.constantFrom(...bases)),
      tail: sometimes(fc.constantFrom(...TAILS)),
      method: sometimes(fc.constantFrom(...methods)),
      host: sometimes(fc.constantFrom(...HOSTS)),
      query: sometimes(fc.constantFrom(...QUERIES)),
      lines: sometimes(headerLines(2)),
    })
    .map((change) => Object.fromEntries(Object.entries(change).filter(([, value]) => value !== undefined)));

function placed(shape: RequestShape, caseId: string): ExplainedRequest {
  const { base, tail, ...rest } = shape;
  return { ...rest, path: `${base}/${caseId}${tail}` };
}

// ---- explain and the gateway ----

interface QuotaWindow {
  key: string;
  limit: number;
  used: number | null;
}

interface Explanation {
  decision: { stage: string; status: number | null; code: string | null };
  rate_limits: { limits: Array<{ key: string; capacity: number }> } | null;
  quota?: { windows: QuotaWindow[]; counts: string } | null;
  cache: {
    decision: 'lookup' | 'bypass' | 'not_cached';
    reason: string | null;
    key?: {
      path_digest: string;
      variant_digest: string | null;
      split_variants?: Array<{ origin_id: string; variant_digest: string | null }>;
    };
  } | null;
}

async function explain(
  request: ExplainedRequest,
  clientIp: string,
  tenant = { id: tenantId, fill: withKeys },
): Promise<Explanation> {
  const answer = await cp.request('POST', `/api/v1/tenants/${tenant.id}/explain`, {
    body: explainBody(request, tenant.fill, clientIp),
  });
  if (answer.status !== 200)
    throw new Error(`explain answered ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer.body as Explanation;
}

let nextRequest = 0;

async function serve(
  request: ExplainedRequest,
  clientIp: string,
  fill = withKeys,
): Promise<RawResponse | undefined> {
  const bytes = requestBytes(request, `explain-limits-${nextRequest++}`, fill);
  const exchange = await rawExchange(
    replica.gateway.trafficPort,
    bytes,
    [request.method],
    DEADLINE_MS,
    clientIp,
  );
  return exchange.responses[0];
}

const xCache = (response: RawResponse) => response.headers.get('x-cache')?.[0] ?? 'none';
const label = (request: ExplainedRequest, clientIp = '127.0.0.1') =>
  [...apiKeys].reduce(
    (text, [name, key]) => text.replaceAll(key, name),
    `${clientIp} ${JSON.stringify(request)}`,
  );

/** The counters a request is charged to, by explain: none when a stage before the limits answers. */
function chargedKeys(explanation: Explanation): Array<{ key: string; capacity: number }> {
  if (explanation.decision.status !== null && BEFORE_LIMITS.has(explanation.decision.stage)) return [];
  return explanation.rate_limits?.limits ?? [];
}

// ---- rate limits ----

interface LimitedStep {
  request: ExplainedRequest;
  clientIp: string;
}

/** Mostly the same request again, else another method, host, path, query, header lines or client. */
const limitSequence = fc
  .tuple(
    requestUnder(['/li', '/lk', '/lkr', '/lr', '/cl'], ['GET', 'GET', 'POST', 'HEAD']),
    fc.array(
      fc.record({
        change: changeOf(['/li', '/lk', '/lkr', '/lr', '/cl'], ['GET', 'POST', 'HEAD']),
        clientIp: sometimes(fc.constantFrom('127.0.0.1', '127.0.0.2', '127.0.0.3')),
      }),
      { minLength: BURST + 1, maxLength: BURST + 4 },
    ),
  )
  .map(([shape, steps]) =>
    steps.map(({ change, clientIp }) => ({
      shape: { ...shape, ...change },
      clientIp: clientIp ?? '127.0.0.1',
    })),
  );

async function resetCounters(): Promise<void> {
  const keys = await scanKeys(redis.client, `${redis.prefix}rl:*`);
  if (keys.length > 0) await redis.client.unlink(...keys);
}

/** How a sequence's answers disagree with the counters explain names (none: an empty list). */
async function limitDisagreements(steps: readonly LimitedStep[]): Promise<string[]> {
  await resetCounters();
  const used = new Map<string, number>();
  const problems: string[] = [];
  for (const [index, { request, clientIp }] of steps.entries()) {
    const explanation = await explain(request, clientIp);
    const response = await serve(request, clientIp);
    if (response === undefined) return [`step ${index}: the gateway gave no answer`];
    const charged = chargedKeys(explanation);
    const spent = charged.find(({ key, capacity }) => (used.get(key) ?? 0) >= capacity);
    // A HEAD answer has no body to carry the code.
    const limited =
      response.status === 429 && (request.method === 'HEAD' || errorCodeOf(response) === 'rate_limited');
    if (limited !== (spent !== undefined)) {
      const history = steps.slice(0, index + 1).map((step) => label(step.request, step.clientIp));
      problems.push(
        `step ${index}: explain: ${spent === undefined ? 'within its limits' : `counter ${spent.key} used up`} ` +
          `(keys ${charged.map(({ key }) => key).join(', ') || 'none'}); gateway: ${response.status} ` +
          `${errorCodeOf(response) ?? ''}\n    ${history.join('\n    ')}`,
      );
      return problems;
    }
    if (!limited) for (const { key } of charged) used.set(key, (used.get(key) ?? 0) + 1);
  }
  return problems;
}

// ---- cache ----

/** The entries a request may look up, by explain: one, or one per origin a split's weights may choose. */
function possibleEntries(explanation: Explanation): string[] {
  const key = explanation.cache?.key;
  if (key === undefined) return [];
  const digests = key.split_variants?.map((variant) => variant.variant_digest) ?? [key.variant_digest];
  return digests.filter((digest) => digest !== null).map((digest) => `${key.path_digest} ${digest}`);
}

/**
 * Whether two explained requests look up one cache entry: `maybe` when a split's weights give either of
 * them one of several origins (each gateway replica's round robin picks which).
 */
function sameEntry(a: Explanation, b: Explanation): boolean | 'maybe' {
  const [x, y] = [possibleEntries(a), possibleEntries(b)];
  if (!x.some((entry) => y.includes(entry))) return false;
  return x.length === 1 && y.length === 1 ? true : 'maybe';
}

/** How the gateway's X-Cache disagrees with what explain says of one request (none: an empty list). */
function cacheHeaderProblem(explanation: Explanation, response: RawResponse): string | undefined {
  if (explanation.decision.status !== null) return undefined; // answered before (or instead of) the cache
  const seen = xCache(response);
  const decision = explanation.cache?.decision ?? 'not_cached';
  const expected = { not_cached: ['none'], bypass: ['BYPASS'], lookup: ['MISS', 'HIT'] }[decision];
  return expected.includes(seen)
    ? undefined
    : `explain: ${decision} ${explanation.cache?.reason ?? ''}; gateway: X-Cache ${seen} (${response.status} ${errorCodeOf(response) ?? ''})`;
}

type Stored = 'stored' | 'never stored' | 'unseen';

/**
 * Repeats `request` until the gateway serves it from the cache: whether it ever did. `unseen` when the
 * request itself asks for no stored answer (explain names its Cache-Control): it may fill an entry it
 * is never answered from, so it is sent once.
 */
async function primed(
  request: ExplainedRequest,
  problems: string[],
  explanation: Explanation,
): Promise<Stored> {
  const unseen = explanation.cache?.decision === 'lookup' && explanation.cache.reason !== null;
  for (let attempt = 0; attempt < (unseen ? 1 : 8); attempt++) {
    const response = await serve(request, '127.0.0.1');
    if (response === undefined) {
      problems.push('the gateway gave no answer');
      return 'never stored';
    }
    const problem = cacheHeaderProblem(explanation, response);
    if (problem !== undefined) {
      problems.push(problem);
      return 'never stored';
    }
    if (xCache(response) === 'HIT') return 'stored';
    if (xCache(response) !== 'MISS') return 'never stored';
    await sleep(10); // the store is written once the answer is complete
  }
  return unseen ? 'unseen' : 'never stored';
}

/** How the second request's answer disagrees with explain's keys of both (none: an empty list). */
async function cacheDisagreements(first: ExplainedRequest, second: ExplainedRequest): Promise<string[]> {
  const [a, b] = [await explain(first, '127.0.0.1'), await explain(second, '127.0.0.1')];
  const problems: string[] = [];
  const stored = await primed(first, problems, a);
  if (problems.length > 0) return problems.map((problem) => `first: ${problem}`);
  const response = await serve(second, '127.0.0.1');
  if (response === undefined) return ['second: the gateway gave no answer'];
  const problem = cacheHeaderProblem(b, response);
  if (problem !== undefined) return [`second: ${problem}`];
  if (b.decision.status !== null || b.cache?.decision !== 'lookup') return [];
  const hit = xCache(response) === 'HIT';
  // A client's Cache-Control may ask for what no stored entry gives as it is (a revalidation, or one
  // fresh enough for its max-age): explain names it, and no HIT is promised then.
  if (b.cache.reason !== null && b.cache.reason !== 'request_no_cache') return [];
  const same = sameEntry(a, b);
  if (same === 'maybe') return [];
  const servable = same && b.cache.reason === null;
  // Whether the first filled an entry is unseen: the second may be a HIT only on the first's key.
  const disagree = stored === 'unseen' ? hit && !servable : hit !== (stored === 'stored' && servable);
  if (disagree) {
    return [
      `explain: ${same ? 'the same key' : 'different keys'}, ${b.cache.reason ?? 'no reason'} (first ${stored}); gateway: the second is ${xCache(response)}`,
    ];
  }
  return [];
}

/** A request, and mostly the same one again with one or two things changed. */
const cachePair = fc.tuple(
  requestUnder(['/co', '/cp', '/cs', '/ck', '/cc', '/other'], ['GET', 'GET', 'GET', 'HEAD']),
  changeOf(['/co', '/cp'], ['GET', 'HEAD', 'POST']),
);

// ---- quotas ----

const QUOTA_KEYS: Record<string, ReadonlyArray<readonly [string, string]>> = {
  metered: [['x-api-key', 'METERED']],
  'metered-bearer': [['Authorization', 'Bearer METERED']],
  metered2: [['X-Api-Key', 'METERED2']],
  free: [['x-api-key', 'FREE']],
  wrong: [['x-api-key', 've_live_not_a_key_of_anyone_0000000000']],
  none: [],
};
const QUOTA_BASES = ['/qk', '/qo', '/qf', '/unrouted'];
const QUOTA_HOSTS = [QUOTA_HOST, 'EXQ.localhost', `${QUOTA_HOST}.`, HOST];

/** Requests to the metered tenant: mostly the same key and route again, each step may change them. */
const quotaSequence = fc.array(
  fc.record({
    base: fc.constantFrom(...QUOTA_BASES),
    tail: fc.constantFrom('', '/x', '/./x', '//x'),
    method: fc.constantFrom('GET', 'GET', 'POST', 'HEAD'),
    host: fc.oneof({ weight: 6, arbitrary: fc.constant(QUOTA_HOST) }, fc.constantFrom(...QUOTA_HOSTS)),
    query: fc.constant(''),
    lines: fc.constantFrom(...Object.keys(QUOTA_KEYS)).map((name) => [...QUOTA_KEYS[name]!]),
  }),
  { minLength: 3, maxLength: TENANT_QUOTA + 4 },
);

async function resetQuotaCounters(): Promise<void> {
  const keys = await scanKeys(redis.client, `${redis.prefix}q:*`);
  if (keys.length > 0) await redis.client.unlink(...keys);
}

/** The windows a request is counted in, by explain: none when a stage before the quota answers. */
function spentWindows(explanation: Explanation): QuotaWindow[] {
  if (explanation.decision.status !== null && BEFORE_QUOTA.has(explanation.decision.stage)) return [];
  return explanation.quota?.windows ?? [];
}

/**
 * How a sequence's answers disagree with the quota counters explain names and reads (none: an empty
 * list): explain must read in each counter what the requests it was spent by left there, refuse the
 * request exactly when one is used up, and the gateway must refuse it (429 quota_exceeded) then too.
 */
async function quotaDisagreements(steps: readonly ExplainedRequest[]): Promise<string[]> {
  await resetQuotaCounters();
  const used = new Map<string, number>();
  const metered = { id: meteredTenantId, fill: withMeteredKeys };
  for (const [index, request] of steps.entries()) {
    const history = () =>
      steps
        .slice(0, index + 1)
        .map((step) => label(step))
        .join('\n    ');
    const explanation = await explain(request, '127.0.0.1', metered);
    const windows = spentWindows(explanation);
    const read = windows.map(({ key, used: count }) => `${key}=${count}`);
    const counted = windows.map(({ key }) => `${key}=${used.get(key) ?? 0}`);
    if (windows.length > 0 && read.join() !== counted.join()) {
      return [
        `step ${index}: explain read ${read.join(', ')}; the requests before it spent ${counted.join(', ')}\n    ${history()}`,
      ];
    }
    const full = windows.find(({ key, limit }) => (used.get(key) ?? 0) >= limit);
    const refusedByExplain = explanation.decision.code === 'quota_exceeded';
    const response = await serve(request, '127.0.0.1', withMeteredKeys);
    if (response === undefined) return [`step ${index}: the gateway gave no answer`];
    // A HEAD answer has no body to carry the code.
    const refused =
      response.status === 429 && (request.method === 'HEAD' || errorCodeOf(response) === 'quota_exceeded');
    if (refused !== (full !== undefined) || refusedByExplain !== refused) {
      return [
        `step ${index}: explain: ${refusedByExplain ? 'quota_exceeded' : explanation.decision.stage} ` +
          `(counters ${counted.join(', ') || 'none'}); gateway: ${response.status} ` +
          `${errorCodeOf(response) ?? ''}\n    ${history()}`,
      ];
    }
    if (refused || windows.length === 0) continue;
    for (const { key } of windows) used.set(key, (used.get(key) ?? 0) + 1);
    const left = String(Math.min(...windows.map(({ key, limit }) => limit - (used.get(key) ?? 0))));
    const header = response.headers.get('x-quota-remaining')?.[0];
    if (header !== left) {
      return [
        `step ${index}: the counters leave ${left}; gateway: X-Quota-Remaining ${header}\n    ${history()}`,
      ];
    }
  }
  return [];
}

// ---- the tests ----

let nextCase = 0;
const caseId = () => `c${nextCase++}`;
/** What a problem of a request sequence is, whatever its ids and step: its first line without them. */
const sequenceProblemKind = (problem: string) =>
  problem
    .split('\n')[0]!
    .replace(/[0-9a-f-]{36}/g, '<id>')
    .replace(/step \d+/, 'step');

describe('explain against a gateway: rate limits and the cache', () => {
  it('names the counters that make the gateway answer 429', async () => {
    const sequences = fc.sample(limitSequence, { seed: SEED, numRuns: CASES });
    const found = new Map<string, string>();
    for (const sequence of sequences) {
      const id = caseId();
      const steps = sequence.map(({ shape, clientIp }) => ({ request: placed(shape, id), clientIp }));
      for (const problem of await limitDisagreements(steps)) {
        const kind = sequenceProblemKind(problem);
        if (!found.has(kind)) found.set(kind, problem);
      }
    }
    expect([...found.values()]).toEqual([]);
  }, 120_000);

  it('gives two requests one cache key exactly when the gateway serves them one entry', async () => {
    const pairs = fc.sample(cachePair, { seed: SEED, numRuns: CASES });
    const found = new Map<string, string>();
    for (const [shape, other] of pairs) {
      const id = caseId();
      const first = placed(shape, id);
      const second = placed({ ...shape, ...other }, id);
      for (const problem of await cacheDisagreements(first, second)) {
        const kind = problem.replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 120);
        if (!found.has(kind))
          found.set(kind, `${problem}\n    first  ${label(first)}\n    second ${label(second)}`);
      }
    }
    expect([...found.values()]).toEqual([]);
  }, 120_000);
});

describe('explain against a gateway: quotas', () => {
  // Quota counters are per UTC day (and month): a midnight during the test (120 s at most) would start
  // the gateway's counts afresh half-way, and explain's read before it would no longer agree.
  beforeAll(() => outsideTheUtcDaysLast(120_000), 130_000);

  it('names the counters a request spends, as counted, and refuses it exactly when the gateway does', async () => {
    const sequences = fc.sample(quotaSequence, { seed: SEED, numRuns: CASES });
    const found = new Map<string, string>();
    for (const sequence of sequences) {
      const id = caseId();
      const steps = sequence.map(({ base, tail, ...rest }) => ({ ...rest, path: `${base}/${id}${tail}` }));
      for (const problem of await quotaDisagreements(steps)) {
        const kind = sequenceProblemKind(problem);
        if (!found.has(kind)) found.set(kind, problem);
      }
    }
    expect([...found.values()]).toEqual([]);
  }, 120_000);
});

/** Disagreements the differential found, each as its smallest pair of requests. */
const CACHE_COUNTEREXAMPLES: Record<string, [first: ExplainedRequest, second: ExplainedRequest]> = {
  "a client's no-cache in standard mode is never answered from the cache as it is": [
    { method: 'GET', host: HOST, path: '/cs/no-cache', query: '', lines: [] },
    { method: 'GET', host: HOST, path: '/cs/no-cache', query: '', lines: [['cache-control', 'no-cache']] },
  ],
  "a client's Pragma: no-cache in standard mode is never answered from the cache as it is": [
    { method: 'GET', host: HOST, path: '/cs/pragma', query: '', lines: [] },
    { method: 'GET', host: HOST, path: '/cs/pragma', query: '', lines: [['pragma', 'no-cache']] },
  ],
  'the key holds the query as the route’s transform leaves it': [
    { method: 'GET', host: HOST, path: '/cqt/utm', query: '?utm_source=mail&a=1', lines: [] },
    { method: 'GET', host: HOST, path: '/cqt/utm', query: '?a=1&utm_source=ads', lines: [] },
  ],
  'a bypass header the route’s transform removes is none': [
    { method: 'GET', host: HOST, path: '/cqt/debug', query: '', lines: [['x-debug', '1']] },
    { method: 'GET', host: HOST, path: '/cqt/debug', query: '', lines: [] },
  ],
  'a bypass parameter the route’s transform removes is none': [
    { method: 'GET', host: HOST, path: '/cqt/preview', query: '?preview=1', lines: [] },
    { method: 'GET', host: HOST, path: '/cqt/preview', query: '', lines: [] },
  ],
  'a bypass header the client names in Connection never reaches the origin, and bypasses nothing': [
    { method: 'GET', host: HOST, path: '/co/connection', query: '', lines: [] },
    {
      method: 'GET',
      host: HOST,
      path: '/co/connection',
      query: '',
      lines: [
        ['Connection', 'x-debug'],
        ['x-debug', '1'],
      ],
    },
  ],
  'a header the route adds and the gateway drops from clients is keyed on the route’s line alone': [
    { method: 'GET', host: HOST, path: '/cuk/a', query: '', lines: [] },
    { method: 'GET', host: HOST, path: '/cuk/a', query: '', lines: [['X-Api-Key', 'mine']] },
  ],
  // The route's first requests: its weights (3:1) send them to the origin, the origin, then the other.
  'the weights’ round robin may give the same request another origin, and another entry': [
    { method: 'GET', host: HOST, path: '/csp/weights', query: '', lines: [] },
    { method: 'GET', host: HOST, path: '/csp/weights', query: '', lines: [] },
  ],
  'a request a split’s override sends to its origin bypasses the entries the weights’ origins filled': [
    { method: 'GET', host: HOST, path: '/csp/override', query: '', lines: [] },
    { method: 'GET', host: HOST, path: '/csp/override', query: '', lines: [['x-canary', 'on']] },
  ],
};

describe('explain against a gateway: the cache counterexamples found', () => {
  it.each(Object.entries(CACHE_COUNTEREXAMPLES))('%s', async (_name, [first, second]) => {
    expect(await cacheDisagreements(first, second)).toEqual([]);
  });
});
