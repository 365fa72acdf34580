import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import {
  type RouteConfig,
  type TenantSnapshot,
  tenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';

/**
 * The benchmark scenarios: what the gateway is configured with (tenant snapshots), the request wrk
 * sends, and which nginx (plain reverse proxy or proxy_cache) it is compared with. nginx does no auth,
 * rate limiting or access logging, so each ratio is the cost of the gateway's features on one core.
 */
export const BENCH_PEPPER = 'bench-pepper-0123456789abcdef0123456789abcdef';
/** Shaped like an issued key (`ve_live_` + 32 characters), as clients send them. */
export const BENCH_API_KEY = 've_live_benchkey000000000000000000000000';
export const BENCH_ORG = 'org_bench';

export interface Scenario {
  id: string;
  title: string;
  /** Path requested (same on the gateway and on nginx). */
  path: string;
  /** Host header for the gateway (tenant resolution). */
  host: string;
  /** Extra request headers (auth); sent to nginx too, which ignores them. */
  headers: (ctx: ScenarioContext) => Record<string, string>;
  nginx: 'proxy' | 'cache';
  /** GATEWAY_ACCESS_LOG_SAMPLE_RATE for this scenario (1 = every request logged). */
  accessLog: number;
  /** L1 cache bytes; 1 turns L1 off (nothing fits), so hits come from Redis. */
  l1Bytes?: number;
  snapshots: (ctx: ScenarioContext) => TenantSnapshot[];
  /** Only with BENCH_LARGE=1. */
  optional?: boolean;
  /**
   * wrk cycles over this many URLs of the path (`?v=0…N-1`, each cached on its own), so concurrent
   * requests rarely ask for the same key: a HIT from Redis is one read per request, not one read
   * shared by every request waiting for the same key.
   */
  pathVariants?: number;
}

export interface ScenarioContext {
  originUrl: string;
  jwt: string;
}

/** Deterministic UUIDs, so a snapshot file is the same on every run. */
export function benchUuid(kind: number, n: number): string {
  const hex = n.toString(16).padStart(12, '0');
  return `00000000-${kind.toString(16).padStart(4, '0')}-4000-8000-${hex}`;
}

type RouteInput = Partial<RouteConfig> & { path_pattern: string };

export function tenantFor(
  n: number,
  originUrl: string,
  routes: RouteInput[],
  options: { apiKeys?: string[] } = {},
): TenantSnapshot {
  const tenantId = benchUuid(1, n);
  const originId = benchUuid(2, n);
  return tenantSnapshot.parse({
    schema_version: 1,
    tenant_id: tenantId,
    version: '1',
    event_time: new Date().toISOString(),
    tenant: {
      id: tenantId,
      name: `bench ${n}`,
      subdomain: `t${n}`,
      clerk_org_id: n === 0 ? BENCH_ORG : null,
      settings: {},
    },
    origins: [
      {
        id: originId,
        name: 'origin',
        targets: [{ url: originUrl }],
        health_check: { active: { enabled: false } },
      },
    ],
    routes: routes.map((route, i) => ({
      id: benchUuid(3, n * 100 + i),
      origin_id: originId,
      auth_mode: 'public',
      ...route,
    })),
    api_keys: (options.apiKeys ?? []).map((key, i) => ({
      id: benchUuid(4, n * 100 + i),
      key_hash: hashApiKey(BENCH_PEPPER, key),
      name: `key ${i}`,
      scopes: [],
      expires_at: null,
    })),
  });
}

const NEVER_LIMITED = { requests_per_second: 1_000_000, burst: 10_000_000, scope: 'api_key' } as const;
const CACHE = { ttl_seconds: 3600 } as const;
/** Distinct cached URLs the cache scenarios request (more than the 50 connections in flight). */
const CACHE_VARIANTS = 256;
const apiKeyHeader = () => ({ 'x-api-key': BENCH_API_KEY });

/** The browser origin the `policies` scenario's requests come from (allowed by its CORS policy). */
export const BENCH_BROWSER_ORIGIN = 'https://app.bench.example';
/**
 * The everyday route policies a browser-facing API turns on: CORS for its web app, an IP allow list
 * that admits the benchmark's loopback client (and a deny list it is checked against), a request header
 * set from the value vocabulary and a response header set.
 */
export const BENCH_ROUTE_POLICIES: Partial<RouteConfig> = {
  cors: {
    allow_origins: ['https://*.bench.example'],
    allow_methods: ['GET', 'POST'],
    allow_headers: ['x-api-key', 'content-type'],
    expose_headers: ['x-request-id'],
    allow_credentials: true,
    max_age_seconds: 600,
  } as RouteConfig['cors'],
  ip_rules: { allow: ['127.0.0.0/8', '::1/128'], deny: ['203.0.113.0/24'] } as RouteConfig['ip_rules'],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' value-template syntax
  request_headers: { set: { 'x-client-ip': '${client_ip}' }, add: {}, remove: [] },
  response_headers: { set: { 'x-served-by': 'vantageedge' }, add: {}, remove: [] },
};

/** 20 distinct route shapes per tenant; the benchmarked one is the last in match order. */
export function scaleRoutes(): RouteInput[] {
  const routes: RouteInput[] = [];
  for (let i = 0; i < 19; i++) routes.push({ path_pattern: `/svc${i}/items/:id/detail${i}` });
  routes.push({ path_pattern: '/api/*' });
  return routes;
}

export const SCENARIOS: Scenario[] = [
  {
    id: 'public',
    title: '1 public route, no features',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: () => ({}),
    nginx: 'proxy',
    accessLog: 0,
    snapshots: ({ originUrl }) => [tenantFor(0, originUrl, [{ path_pattern: '/api/*' }])],
  },
  {
    id: 'apikey',
    title: '2 API-key auth',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: apiKeyHeader,
    nginx: 'proxy',
    accessLog: 0,
    snapshots: ({ originUrl }) => [
      tenantFor(0, originUrl, [{ path_pattern: '/api/*', auth_mode: 'apikey_required' }], {
        apiKeys: [BENCH_API_KEY],
      }),
    ],
  },
  {
    id: 'full',
    title: '3 full pipeline: API key + exact Redis token bucket + metrics + access log',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: apiKeyHeader,
    nginx: 'proxy',
    accessLog: 1,
    snapshots: ({ originUrl }) => [
      tenantFor(
        0,
        originUrl,
        [
          {
            path_pattern: '/api/*',
            auth_mode: 'apikey_required',
            rate_limit: { ...NEVER_LIMITED, accuracy: 'exact' } as RouteConfig['rate_limit'],
          },
        ],
        { apiKeys: [BENCH_API_KEY] },
      ),
    ],
  },
  {
    id: 'full-fast',
    title: '4 full pipeline, fast rate-limit mode',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: apiKeyHeader,
    nginx: 'proxy',
    accessLog: 1,
    snapshots: ({ originUrl }) => [
      tenantFor(
        0,
        originUrl,
        [
          {
            path_pattern: '/api/*',
            auth_mode: 'apikey_required',
            rate_limit: { ...NEVER_LIMITED, accuracy: 'fast' } as RouteConfig['rate_limit'],
          },
        ],
        { apiKeys: [BENCH_API_KEY] },
      ),
    ],
  },
  {
    id: 'jwt',
    title: '5 JWT auth (Clerk RS256 token, verified; verified-token cache on)',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: ({ jwt }) => ({ authorization: `Bearer ${jwt}` }),
    nginx: 'proxy',
    accessLog: 0,
    snapshots: ({ originUrl }) => [
      tenantFor(0, originUrl, [{ path_pattern: '/api/*', auth_mode: 'jwt_required' }]),
    ],
  },
  {
    id: 'cache-l1',
    title: '6 cache HIT from L1 (nginx: proxy_cache)',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: () => ({}),
    nginx: 'cache',
    accessLog: 0,
    pathVariants: CACHE_VARIANTS,
    snapshots: ({ originUrl }) => [
      tenantFor(0, originUrl, [
        { path_pattern: '/api/*', cache_policy: CACHE as RouteConfig['cache_policy'] },
      ]),
    ],
  },
  {
    id: 'cache-redis',
    title: '7 cache HIT from Redis, L1 off (nginx: proxy_cache)',
    path: '/api/posts/1',
    host: 't0.localhost',
    headers: () => ({}),
    nginx: 'cache',
    accessLog: 0,
    l1Bytes: 1,
    pathVariants: CACHE_VARIANTS,
    snapshots: ({ originUrl }) => [
      tenantFor(0, originUrl, [
        { path_pattern: '/api/*', cache_policy: CACHE as RouteConfig['cache_policy'] },
      ]),
    ],
  },
  {
    id: 'scale',
    title: '8 1,000 tenants x 20 routes loaded',
    path: '/api/posts/1',
    host: 't500.localhost',
    headers: () => ({}),
    nginx: 'proxy',
    accessLog: 0,
    snapshots: ({ originUrl }) => {
      const routes = scaleRoutes();
      return Array.from({ length: 1000 }, (_, n) => tenantFor(n, originUrl, routes));
    },
  },
  {
    id: 'policies',
    title: '9 API-key auth + CORS + IP rules + two header transforms (compare with 2)',
    path: '/api/posts/1',
    // Another tenant than scenario 2's, so that one gateway can serve both in the paired comparison.
    host: 't1.localhost',
    headers: () => ({ ...apiKeyHeader(), origin: BENCH_BROWSER_ORIGIN }),
    nginx: 'proxy',
    accessLog: 0,
    snapshots: ({ originUrl }) => [
      tenantFor(
        1,
        originUrl,
        [{ path_pattern: '/api/*', auth_mode: 'apikey_required', ...BENCH_ROUTE_POLICIES }],
        {
          apiKeys: [BENCH_API_KEY],
        },
      ),
    ],
  },
  {
    id: 'large',
    title: '10 public route, 64 KiB body',
    path: '/large',
    host: 't0.localhost',
    headers: () => ({}),
    nginx: 'proxy',
    accessLog: 0,
    optional: true,
    snapshots: ({ originUrl }) => [tenantFor(0, originUrl, [{ path_pattern: '/large' }])],
  },
];

/**
 * Scenario 2's route and key on a third tenant: measured against scenario 2 in the paired comparison
 * as its control. Both sides do the same work, so how far its ratio strays from 1 is how far this
 * machine moved the pairs during the run.
 */
export const APIKEY_TWIN: Scenario = {
  ...SCENARIOS.find((s) => s.id === 'apikey')!,
  id: 'apikey-twin',
  title: '2 API-key auth, on another tenant (control of the paired comparison)',
  host: 't2.localhost',
  snapshots: ({ originUrl }) => [
    tenantFor(2, originUrl, [{ path_pattern: '/api/*', auth_mode: 'apikey_required' }], {
      apiKeys: [BENCH_API_KEY],
    }),
  ],
};

/**
 * Scenario 2 on another tenant with scenario 9's request (its browser `Origin` too): scenario 9 against
 * it is what the route policies themselves cost, the request being the same on both sides.
 */
export const APIKEY_BROWSER: Scenario = {
  ...APIKEY_TWIN,
  id: 'apikey-browser',
  title: "2 API-key auth, on another tenant, with scenario 9's request (its Origin header)",
  headers: SCENARIOS.find((s) => s.id === 'policies')!.headers,
};

/**
 * Scenario 9 taken apart, for `make bench-policy-parts`: the API-key route on the policies' tenant
 * with one part at a time, each measured against scenario 2 in the paired comparison. `origin-only`
 * sends the browser's Origin header to a route without policies; `cors-lean` is CORS without
 * credentials or exposed headers (two response headers instead of four).
 */
export const POLICY_PARTS: Scenario[] = (() => {
  const policies = SCENARIOS.find((s) => s.id === 'policies')!;
  const part = (id: string, fields: Partial<RouteConfig>, withOrigin: boolean): Scenario => ({
    ...policies,
    id: `part-${id}`,
    title: `9 taken apart: ${id}`,
    headers: withOrigin ? policies.headers : apiKeyHeader,
    snapshots: ({ originUrl }) => [
      tenantFor(1, originUrl, [{ path_pattern: '/api/*', auth_mode: 'apikey_required', ...fields }], {
        apiKeys: [BENCH_API_KEY],
      }),
    ],
  });
  const { cors, ip_rules, request_headers, response_headers } = BENCH_ROUTE_POLICIES as Required<
    typeof BENCH_ROUTE_POLICIES
  >;
  return [
    part('origin-only', {}, true),
    part('cors', { cors }, true),
    part('cors-lean', { cors: { ...cors!, allow_credentials: false, expose_headers: [] } }, true),
    part('ip-rules', { ip_rules }, false),
    part('request-headers', { request_headers }, false),
    part('response-headers', { response_headers }, false),
  ];
})();
