import { createHash } from 'node:crypto';
import type { StoredEvent } from './recorded-log.js';

/**
 * A tenant's first events in the exact shapes earlier releases wrote them, one entry per release whose
 * shapes differ from the next one's: what a store written by every release holds. Each shape is taken
 * from that release's code (`git show <commit>:<path>` of the event schemas and the commands that wrote
 * them), never made up. A release that adds, renames or removes a field of a stored event adds an entry
 * here, with the shapes the release before it wrote.
 */

export interface OldTenantIds {
  tenantId: string;
  originId: string;
  routeId: string;
  apiKeyId: string;
  subdomain: string;
}

export interface OldRelease {
  /** The commit whose code wrote these shapes. */
  commit: string;
  /** What the release's shapes lack or carry that later ones do not. */
  differs: string;
  /** Its TenantCreated, origin, route and API key events for one tenant, in the order it wrote them. */
  events(ids: OldTenantIds, occurredAt: string): StoredEvent[];
}

const metadataOf = (tenantId: string, occurredAt: string) => ({
  actor: 'user_platformadmin',
  tenant_id: tenantId,
  occurred_at: occurredAt,
  causation_id: null,
  correlation_id: '00000000-0000-4000-8000-000000000000',
  schema_version: 1,
});

function eventOf(
  ids: OldTenantIds,
  occurredAt: string,
  stream: string,
  type: string,
  data: Record<string, unknown>,
): StoredEvent {
  return { id: crypto.randomUUID(), stream, type, data, metadata: metadataOf(ids.tenantId, occurredAt) };
}

/** A key hash of its own per tenant (hashes are unique platform-wide). */
const keyHashOf = (ids: OldTenantIds) => createHash('sha256').update(ids.apiKeyId).digest('hex');

/** rateLimitPolicy.parse({ requests_per_second: 100 }) of every release so far. */
const ROUTE_RATE_LIMIT = {
  scope: 'route',
  accuracy: 'exact',
  algorithm: 'token_bucket',
  on_store_failure: 'open',
  requests_per_second: 100,
};

/** An origin's load_balancing, health_check and circuit_breaker as parsed from {} by every release so far. */
const ORIGIN_POLICIES = {
  load_balancing: { hash_on: 'client_ip', algorithm: 'round_robin' },
  health_check: {
    active: {
      enabled: true,
      timeout_seconds: 2,
      interval_seconds: 10,
      healthy_threshold: 2,
      unhealthy_threshold: 3,
    },
    passive: { enabled: true, unhealthy_threshold: 5 },
  },
  circuit_breaker: {
    enabled: true,
    open_seconds: 30,
    window_requests: 20,
    half_open_requests: 1,
    consecutive_failures: 5,
    error_rate_threshold: 0.5,
  },
};

/** cachePolicy.parse({}) at 0422905: before mode, heuristic freshness, stale keeping and tag headers. */
const CACHE_POLICY_0422905 = {
  enabled: true,
  ttl_seconds: 60,
  cache_key_pattern: 'path+query',
  vary_headers: [],
  bypass: { headers: [], cookies: [], query_params: [] },
  cacheable_statuses: [200, 203, 301, 404],
  max_body_bytes: 1048576,
  shared: false,
  cache_set_cookie: false,
  stale_while_revalidate_seconds: 0,
  stale_if_error_seconds: 0,
};

export const OLD_RELEASES: readonly OldRelease[] = [
  {
    // The first write side (events.ts, schemas/requests.ts, commands/*-commands.ts of 0422905).
    commit: '0422905',
    differs:
      'settings with service_jwks and custom_domains and without service_accounts; routes without allow_any_authenticated_user, websocket_token or any route policy; cache_policy before mode; keys without quota',
    events: (ids, at) => [
      eventOf(ids, at, `tenant-${ids.tenantId}`, 'TenantCreated', {
        tenant_id: ids.tenantId,
        name: 'Old Tenant',
        subdomain: ids.subdomain,
        clerk_org_id: null,
        settings: {
          rate_limit: { ...ROUTE_RATE_LIMIT, scope: 'tenant', requests_per_second: 500 },
          oidc: {
            issuer: 'https://login.example.com/',
            audience: 'old-api',
            jwks_url: 'https://login.example.com/.well-known/jwks.json',
          },
          service_jwks: [{ kty: 'EC', crv: 'P-256', kid: 'legacy', x: 'AAAA', y: 'AAAA' }],
          custom_domains: ['api.old-tenant.example'],
        },
      }),
      eventOf(ids, at, `origin-${ids.originId}`, 'OriginAdded', {
        origin_id: ids.originId,
        tenant_id: ids.tenantId,
        name: 'users-api',
        targets: [{ url: 'http://127.0.0.1:9/', weight: 1 }],
        health_check_path: '/health',
        timeout_seconds: 30,
        ...ORIGIN_POLICIES,
      }),
      eventOf(ids, at, `route-${ids.routeId}`, 'RouteCreated', {
        route_id: ids.routeId,
        tenant_id: ids.tenantId,
        origin_id: ids.originId,
        path_pattern: '/users/*',
        methods: [],
        priority: 0,
        auth_mode: 'public',
        required_scopes: [],
        require_tenant_org: true,
        strip_prefix: null,
        rate_limit: ROUTE_RATE_LIMIT,
        cache_policy: CACHE_POLICY_0422905,
      }),
      eventOf(ids, at, `apikey-${ids.apiKeyId}`, 'ApiKeyIssued', {
        api_key_id: ids.apiKeyId,
        tenant_id: ids.tenantId,
        name: 'ci',
        key_hash: keyHashOf(ids),
        key_prefix: 've_live_odjR',
        scopes: ['read'],
        expires_at: null,
      }),
    ],
  },
  {
    // The release that recorded fixtures/event-log-v1 (d4e8c76): its tenant, origin, route and key.
    commit: 'd4e8c76',
    differs:
      'origins without tls; routes without websocket_token, route policies or preserve_host; settings without authorized_parties, ip_rules, quota or cache; old event names (OriginAdded)',
    events: (ids, at) => [
      eventOf(ids, at, `tenant-${ids.tenantId}`, 'TenantCreated', {
        name: 'Acme',
        settings: { oidc: null, rate_limit: null, service_accounts: [] },
        subdomain: ids.subdomain,
        tenant_id: ids.tenantId,
        clerk_org_id: null,
      }),
      eventOf(ids, at, `origin-${ids.originId}`, 'OriginAdded', {
        name: 'users-api',
        targets: [{ url: 'http://127.0.0.1:9/', weight: 1 }],
        origin_id: ids.originId,
        tenant_id: ids.tenantId,
        ...ORIGIN_POLICIES,
        timeout_seconds: 30,
        health_check_path: '/health',
      }),
      eventOf(ids, at, `route-${ids.routeId}`, 'RouteCreated', {
        methods: [],
        priority: 0,
        route_id: ids.routeId,
        auth_mode: 'public',
        origin_id: ids.originId,
        tenant_id: ids.tenantId,
        rate_limit: ROUTE_RATE_LIMIT,
        cache_policy: null,
        path_pattern: '/users/*',
        strip_prefix: null,
        required_scopes: [],
        require_tenant_org: true,
        allow_any_authenticated_user: false,
      }),
      eventOf(ids, at, `apikey-${ids.apiKeyId}`, 'ApiKeyIssued', {
        name: 'ci',
        scopes: ['read'],
        key_hash: keyHashOf(ids),
        tenant_id: ids.tenantId,
        api_key_id: ids.apiKeyId,
        expires_at: null,
        key_prefix: 've_live_odjR',
      }),
    ],
  },
  {
    // The last release before tags (events.ts, gateway-config.ts, schemas/requests.ts of f66b7e0).
    commit: 'f66b7e0',
    differs: 'origins and routes without tags',
    events: (ids, at) => [
      eventOf(ids, at, `tenant-${ids.tenantId}`, 'TenantCreated', {
        name: 'Acme',
        settings: {
          oidc: null,
          ip_rules: null,
          rate_limit: null,
          service_accounts: [],
          authorized_parties: null,
        },
        subdomain: ids.subdomain,
        tenant_id: ids.tenantId,
        clerk_org_id: null,
      }),
      eventOf(ids, at, `origin-${ids.originId}`, 'OriginCreated', {
        tls: {
          verify: true,
          server_name: null,
          verify_depth: null,
          ca_certificates: null,
          client_certificate_id: null,
        },
        name: 'users-api',
        targets: [{ url: 'http://127.0.0.1:9/', weight: 1 }],
        origin_id: ids.originId,
        tenant_id: ids.tenantId,
        ...ORIGIN_POLICIES,
        timeout_seconds: 30,
        health_check_path: '/health',
      }),
      eventOf(ids, at, `route-${ids.routeId}`, 'RouteCreated', {
        cors: null,
        match: null,
        query: null,
        methods: [],
        retries: null,
        ip_rules: null,
        priority: 0,
        redirect: null,
        route_id: ids.routeId,
        timeouts: null,
        auth_mode: 'public',
        origin_id: ids.originId,
        tenant_id: ids.tenantId,
        rate_limit: ROUTE_RATE_LIMIT,
        cache_policy: null,
        path_pattern: '/users/*',
        rewrite_path: null,
        strip_prefix: null,
        preserve_host: false,
        traffic_split: null,
        fixed_response: null,
        max_body_bytes: null,
        request_headers: null,
        required_scopes: [],
        websocket_token: 'header',
        max_header_bytes: null,
        response_headers: null,
        require_tenant_org: true,
        allow_any_authenticated_user: false,
      }),
      eventOf(ids, at, `apikey-${ids.apiKeyId}`, 'ApiKeyIssued', {
        name: 'ci',
        quota: null,
        scopes: ['read'],
        key_hash: keyHashOf(ids),
        tenant_id: ids.tenantId,
        api_key_id: ids.apiKeyId,
        expires_at: null,
        key_prefix: 've_live_p1N3',
      }),
    ],
  },
];
