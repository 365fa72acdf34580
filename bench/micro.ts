import { mkdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Authenticator } from '@vantageedge/gateway/auth/authenticator';
import { GatewayConfigStore } from '@vantageedge/gateway/config/gateway-config-store';
import { accessLogLine } from '@vantageedge/gateway/observability/access-log-line';
import { GatewayExchange } from '@vantageedge/gateway/pipeline/exchange';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { pathDigest, variantDigest } from '@vantageedge/shared/gateway-policies/cache-key';
import { compileCachePolicy } from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { RouteMatcher } from '@vantageedge/shared/routing/route-matcher';
import { createClerkTestKeys, signClerkToken } from '@vantageedge/shared/testing/clerk-tokens';
import { pino } from 'pino';
import { measureCacheHitPaths } from './lib/cache-hit-paths.js';
import { BENCH_API_KEY, BENCH_ORG, BENCH_PEPPER, scaleRoutes, tenantFor } from './lib/scenarios.js';

/**
 * `make bench-micro`: the gateway's hot functions in isolation, ns/op (median of BENCH_MICRO_SAMPLES
 * timed samples of BENCH_MICRO_MS each), wall clock and CPU time of this process (the CPU figure holds
 * up when other processes share the core), then the CPU per cache HIT from L1 and from Redis
 * (bench/lib/cache-hit-paths.ts; BENCH_MICRO_HITS hits per sample, Redis at REDIS_URL, skipped when
 * unreachable). JSON: bench-results/micro-<timestamp>.json.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SAMPLES = Number(process.env['BENCH_MICRO_SAMPLES'] ?? 5);
const SAMPLE_MS = Number(process.env['BENCH_MICRO_MS'] ?? 200);

interface MicroResult {
  name: string;
  /** Wall-clock time per operation (inflated when other processes share the core). */
  ns_per_op: number;
  /** CPU time this process spent per operation: the steadier figure on a shared machine. */
  cpu_ns_per_op: number;
  ops_per_second: number;
  samples: number[];
  cpu_samples: number[];
}

let sink: unknown;

/** Runs `fn` in batches until SAMPLE_MS has passed; returns wall and CPU ns/op. Sync or async functions. */
async function sample(fn: () => unknown, isAsync: boolean): Promise<{ wall: number; cpu: number }> {
  let ops = 0;
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  const budget = BigInt(SAMPLE_MS) * 1_000_000n;
  while (process.hrtime.bigint() - started < budget) {
    for (let i = 0; i < 100; i++) sink = isAsync ? await fn() : fn();
    ops += 100;
  }
  const wall = Number(process.hrtime.bigint() - started) / ops;
  const cpu = process.cpuUsage(cpuBefore);
  return { wall, cpu: ((cpu.user + cpu.system) * 1000) / ops };
}

const medianOf = (values: readonly number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

async function bench(name: string, fn: () => unknown, isAsync = false): Promise<MicroResult> {
  await sample(fn, isAsync); // warm-up (JIT)
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const { wall, cpu } = await sample(fn, isAsync);
    samples.push(Math.round(wall));
    cpuSamples.push(Math.round(cpu));
  }
  const ns = medianOf(samples);
  const cpuNs = medianOf(cpuSamples);
  const result = {
    name,
    ns_per_op: ns,
    cpu_ns_per_op: cpuNs,
    ops_per_second: Math.round(1e9 / ns),
    samples,
    cpu_samples: cpuSamples,
  };
  process.stdout.write(
    `${name.padEnd(66)} ${String(ns).padStart(9)} ns/op ${String(cpuNs).padStart(9)} CPU ns/op\n`,
  );
  return result;
}

const noUpstreams = () => ({ acquire: () => undefined, close: async () => {} });
const origin = 'http://127.0.0.1:1';

// Route matching: one tenant with 20 routes (the matched one last), and host → tenant over 1,000 tenants.
const small = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
small.apply(tenantFor(0, origin, scaleRoutes(), { apiKeys: [BENCH_API_KEY] }));
const scale = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
for (let n = 0; n < 1000; n++) scale.apply(tenantFor(n, origin, scaleRoutes()));
const tenant = small.resolveHost('t0.localhost')!;
// Mixed protections: every request also checks the other readings of its path (case, slash, ;params).
const mixed = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
mixed.apply(
  tenantFor(0, origin, [
    ...scaleRoutes(),
    { path_pattern: '/api/admin/*', auth_mode: 'apikey_required' },
    { path_pattern: '/api/internal', auth_mode: 'jwt_required' },
  ]),
);
const mixedTenant = mixed.resolveHost('t0.localhost')!;

// Auth: API key route and Clerk JWT route.
const keyed = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
keyed.apply(
  tenantFor(
    0,
    origin,
    [
      { path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
      { path_pattern: '/jwt/*', auth_mode: 'jwt_required' },
    ],
    { apiKeys: Array.from({ length: 1000 }, (_, i) => (i === 0 ? BENCH_API_KEY : `${BENCH_API_KEY}${i}`)) },
  ),
);
const keyedTenant = keyed.resolveHost('t0.localhost')!;
const keyRoute = keyedTenant.router.match('GET', '/keyed/x')!;
const jwtRoute = keyedTenant.router.match('GET', '/jwt/x')!;
const keys = await createClerkTestKeys();
const token = await signClerkToken(keys, { userId: 'user_bench', orgId: BENCH_ORG, expiresInSeconds: 3600 });
const authenticator = (cacheSize: number) =>
  new Authenticator({
    apiKeyPepper: BENCH_PEPPER,
    clerk: { jwtKey: keys.publicKeyPem },
    tokenCacheSize: cacheSize,
    apiKeyCacheSize: cacheSize,
  });
const withCache = authenticator(10_000);
const withoutCache = authenticator(0);
const keyHeaders = { 'x-api-key': BENCH_API_KEY };
const jwtHeaders = { authorization: `Bearer ${token}` };
// A session token of about 12 KB (rich public metadata). Each request brings its header as a new
// string, whose hash a map lookup would compute again: the benchmark makes one per operation too.
const largeToken = await signClerkToken(keys, {
  userId: 'user_bench',
  orgId: BENCH_ORG,
  expiresInSeconds: 3600,
  customClaims: { metadata: { notes: 'n'.repeat(9_000) } },
});
const largeAuthorization = Buffer.from(`Bearer ${largeToken}`, 'latin1');
const largeJwtHeaders = () => ({ authorization: largeAuthorization.toString('latin1') });
for (const [auth, route, headers] of [
  [withCache, keyRoute, keyHeaders],
  [withCache, jwtRoute, jwtHeaders],
  [withCache, jwtRoute, largeJwtHeaders()],
  [withoutCache, jwtRoute, jwtHeaders],
] as const) {
  const result = await auth.authenticate(keyedTenant, route, headers);
  if (!result.ok) throw new Error(`micro-bench setup: authentication failed (${result.code})`);
}

// Cache key: path + sorted query (default) and path+query+headers with a per-caller route.
const cached = tenantFor(0, origin, [
  { path_pattern: '/a/*', cache_policy: { ttl_seconds: 60 } as never },
  {
    path_pattern: '/b/*',
    auth_mode: 'apikey_required',
    cache_policy: {
      ttl_seconds: 60,
      cache_key_pattern: 'path+query+headers',
      vary_headers: ['accept-language'],
    } as never,
  },
]);
const plainPolicy = compileCachePolicy(cached.tenant_id, cached.routes[0]!)!;
const varyPolicy = compileCachePolicy(cached.tenant_id, cached.routes[1]!)!;
const cacheRequest = {
  method: 'GET',
  path: '/a/posts/1',
  query: 'page=2&sort=desc&fields=id,title',
  headers: { 'accept-language': 'en-GB' },
};

// Access log: the same line three ways, each into a destination that discards it (the write itself is
// asynchronous and batched in the gateway; what is timed here is what the request path pays).
const logged = new GatewayExchange(
  {
    method: 'GET',
    url: '/api/posts/1',
    headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0' },
    bodyBytes: 0,
  } as unknown as IncomingMessage,
  { bodyBytes: 1834 } as unknown as ServerResponse,
  '9f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f',
  '127.0.0.1',
);
logged.tenant = keyedTenant;
logged.route = keyRoute;
logged.path = '/api/posts/1';
logged.traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
logged.upstreamTarget = 'http://127.0.0.1:8081';
logged.upstreamMs = 0.8123;
logged.rateLimitOutcome = 'allowed';
const discard = new Writable({
  write(_chunk, _encoding, callback) {
    callback();
  },
});
const winstonLogger = createLogger({ service: 'gateway', stream: discard });
const pinoLogger = pino(
  { base: { service: 'gateway' }, timestamp: pino.stdTimeFunctions.isoTime },
  { write() {} },
);
const accessFields = (exchange: GatewayExchange) => ({
  kind: 'access',
  request_id: exchange.requestId,
  trace_id: exchange.traceId,
  tenant_id: exchange.tenant?.id,
  route_id: exchange.route?.config.id,
  method: exchange.req.method,
  path: exchange.path || exchange.req.url,
  status: 200,
  latency_ms: 1.234,
  upstream_target: exchange.upstreamTarget,
  upstream_ms: exchange.upstreamMs === undefined ? undefined : Math.round(exchange.upstreamMs * 1000) / 1000,
  auth: exchange.identity.kind,
  rate_limit: exchange.rateLimitOutcome,
  cache: exchange.cacheOutcome,
  error_code: exchange.errorCode,
  client_ip: exchange.clientIp,
  retries: exchange.retries,
  resends: exchange.resends,
  response_complete: exchange.responseComplete,
  bytes_received: (exchange.req as unknown as { bodyBytes: number }).bodyBytes,
  bytes_sent: (exchange.res as unknown as { bodyBytes: number }).bodyBytes,
  user_agent: exchange.req.headers['user-agent'],
});

const results: MicroResult[] = [
  await bench('route match: 20 routes, last one matches', () => tenant.router.resolve('GET', '/api/posts/1')),
  await bench('route match: 22 routes of mixed protection (readings checked)', () =>
    mixedTenant.router.resolve('GET', '/api/posts/1'),
  ),
  await bench('route match: host → tenant (1,000 tenants) + 20 routes', () =>
    scale.resolveHost('t500.localhost')!.router.resolve('GET', '/api/posts/1'),
  ),
  await bench('api-key hash (HMAC-SHA-256 of the presented key)', () =>
    hashApiKey(BENCH_PEPPER, BENCH_API_KEY),
  ),
  await bench('api-key auth: remembered digest + lookup among 1,000 keys', () =>
    withCache.authenticate(keyedTenant, keyRoute, keyHeaders),
  ),
  await bench('api-key auth: hash + lookup among 1,000 keys (digest cache off)', () =>
    withoutCache.authenticate(keyedTenant, keyRoute, keyHeaders),
  ),
  await bench(
    'jwt auth: Clerk RS256 verify, no verified-token cache',
    () => withoutCache.authenticate(keyedTenant, jwtRoute, jwtHeaders),
    true,
  ),
  await bench(
    'jwt auth: verified-token cache hit',
    () => withCache.authenticate(keyedTenant, jwtRoute, jwtHeaders),
    true,
  ),
  await bench('jwt auth: 12 KB header made as a new string (baseline of the next)', () => largeJwtHeaders()),
  await bench(
    'jwt auth: verified-token cache hit, 12 KB token in a new header string',
    () => withCache.authenticate(keyedTenant, jwtRoute, largeJwtHeaders()),
    true,
  ),
  await bench(
    'cache key: path digest + variant (path+query, 3 params)',
    () => pathDigest(cacheRequest.path) + variantDigest(plainPolicy, cacheRequest, {}),
  ),
  await bench('access log line: fixed-shape serializer (the gateway)', () =>
    accessLogLine(logged, 'gateway', 200, 1.234),
  ),
  await bench('access log line: pino 10, same fields, no-op destination', () =>
    pinoLogger.info(accessFields(logged), 'request'),
  ),
  await bench('access log line: winston, same fields, no-op stream (before)', () =>
    winstonLogger.info('request', accessFields(logged)),
  ),
  await bench(
    'cache key: path+query+headers, per caller',
    () => pathDigest(cacheRequest.path) + variantDigest(varyPolicy, cacheRequest, { apiKeyId: 'k1' }),
  ),
];

// Route compile: 2,000 vs 16,000 routes (each under its own first segment, a quarter generic). The
// ratio is what matters: n log n predicts ≈ 10, quadratic 64.
const compileRoutes = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    config: routeConfig.parse({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      origin_id: '00000000-0000-4000-8000-000000000000',
      path_pattern: i % 4 === 0 ? `/:p/s${i}/*` : `/svc${i}/items/:id`,
      priority: i % 3,
      auth_mode: 'public',
    }),
  }));
const compile2k = compileRoutes(2_000);
const compile16k = compileRoutes(16_000);
const compileSmall = await bench('route compile: 2,000 routes', () => new RouteMatcher(compile2k));
const compileLarge = await bench('route compile: 16,000 routes', () => new RouteMatcher(compile16k));
results.push(compileSmall, compileLarge);
const compileGrowth = compileLarge.ns_per_op / compileSmall.ns_per_op;
process.stdout.write(
  `route compile growth 2,000 → 16,000 routes: ${compileGrowth.toFixed(1)}× (n log n ≈ 10, n² = 64)\n`,
);

// Routes of one path told apart by their own header value (1,000 routes `/api/*`, each for one
// x-tenant-shard, and a strict `/*`): filed by that value, and every route visited (as before the index).
const shardRoutes = [
  ...Array.from({ length: 1_000 }, (_, i) => ({
    config: routeConfig.parse({
      id: `00000000-0000-4000-8001-${String(i).padStart(12, '0')}`,
      origin_id: '00000000-0000-4000-8000-000000000000',
      path_pattern: '/api/*',
      auth_mode: 'public',
      match: { hosts: [], headers: [{ name: 'x-tenant-shard', exact: String(i) }], query: [] },
    }),
  })),
  {
    config: routeConfig.parse({
      id: '00000000-0000-4000-8002-000000000000',
      origin_id: '00000000-0000-4000-8000-000000000000',
      path_pattern: '/*',
      auth_mode: 'apikey_required',
    }),
  },
];
const shardRequest = {
  facts: { req: { headers: { 'x-tenant-shard': '731' } } as unknown as IncomingMessage, query: '' },
  preflight: false,
};
const shardIndexed = new RouteMatcher(shardRoutes);
const shardVisited = new RouteMatcher(shardRoutes, null, { indexConditionValues: false });
results.push(
  await bench('route match: 1,000 routes told apart by a header value, HEAD (filed by value)', () =>
    shardIndexed.resolve('HEAD', '/Api;x/', shardRequest),
  ),
  await bench('route match: 1,000 routes told apart by a header value, HEAD (every route visited)', () =>
    shardVisited.resolve('HEAD', '/Api;x/', shardRequest),
  ),
);
void sink;

const cacheHitPaths = await measureCacheHitPaths({
  redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:56379',
  hits: Number(process.env['BENCH_MICRO_HITS'] ?? 20_000),
  samples: SAMPLES,
  log: (line) => process.stdout.write(`${line}\n`),
});

const report = {
  at: new Date().toISOString(),
  node: process.version,
  machine: {
    cpu_model: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    load_average: os.loadavg(),
  },
  samples: SAMPLES,
  sample_ms: SAMPLE_MS,
  results,
  route_compile_growth_2k_to_16k: Number(compileGrowth.toFixed(2)),
  cache_hit_paths: cacheHitPaths,
};
mkdirSync(path.join(repo, 'bench-results'), { recursive: true });
const file = path.join(repo, 'bench-results', `micro-${report.at.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`JSON: ${path.relative(repo, file)}\n`);
