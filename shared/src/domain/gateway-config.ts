import { z } from 'zod';
import { sealedPrivateKey } from '../tls/private-key-envelope.js';

/**
 * The gateway-facing configuration of a tenant: the shapes the control plane validates in commands,
 * records in events, and the snapshot projector compiles into a TenantSnapshot for the gateways.
 * snake_case, as in the admin API.
 */

export const AUTH_MODES = ['public', 'jwt_required', 'apikey_required', 'jwt_or_apikey', 'service'] as const;
export const authMode = z.enum(AUTH_MODES);
export type AuthMode = z.infer<typeof authMode>;

export const RATE_LIMIT_SCOPES = ['tenant', 'route', 'user', 'api_key', 'ip'] as const;

export const rateLimitPolicy = z.strictObject({
  algorithm: z.enum(['token_bucket', 'sliding_window']).default('token_bucket'),
  /** token_bucket: refill rate. sliding_window: default limit is requests_per_second × window_seconds. */
  requests_per_second: z.number().positive().max(1_000_000),
  /** token_bucket capacity; defaults to requests_per_second. */
  burst: z.number().int().min(1).max(10_000_000).optional(),
  /** sliding_window only: window length and the number of requests it admits. */
  window_seconds: z.number().int().min(1).max(86_400).optional(),
  limit: z.number().int().min(1).optional(),
  scope: z.enum(RATE_LIMIT_SCOPES).default('route'),
  /** exact: one atomic Redis call per request. fast: local spending synced periodically (bounded error). */
  accuracy: z.enum(['exact', 'fast']).default('exact'),
  /** What to do when Redis is unreachable: open = local fallback limiter, closed = 503. */
  on_store_failure: z.enum(['open', 'closed']).default('open'),
});
export type RateLimitPolicy = z.infer<typeof rateLimitPolicy>;

export const CACHE_KEY_PATTERNS = ['path', 'path+query', 'path+query+headers'] as const;

export const cachePolicy = z.strictObject({
  enabled: z.boolean().default(true),
  ttl_seconds: z.number().int().min(1).max(31_536_000).default(60),
  cache_key_pattern: z.enum(CACHE_KEY_PATTERNS).default('path+query'),
  /** Request headers that are part of the key with path+query+headers (lower-cased). */
  vary_headers: z.array(z.string().min(1).max(100)).max(20).default([]),
  bypass: z
    .strictObject({
      headers: z.array(z.string().min(1).max(100)).max(20).default([]),
      cookies: z.array(z.string().min(1).max(100)).max(20).default([]),
      query_params: z.array(z.string().min(1).max(100)).max(20).default([]),
    })
    .prefault({}),
  cacheable_statuses: z.array(z.number().int().min(100).max(599)).default([200, 203, 301, 404]),
  max_body_bytes: z
    .number()
    .int()
    .min(0)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  /** Authenticated routes key on the caller's identity unless the response is declared shareable. */
  shared: z.boolean().default(false),
  cache_set_cookie: z.boolean().default(false),
  stale_while_revalidate_seconds: z.number().int().min(0).max(86_400).default(0),
  stale_if_error_seconds: z.number().int().min(0).max(86_400).default(0),
});
export type CachePolicy = z.infer<typeof cachePolicy>;

export const originTarget = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  weight: z.number().int().min(1).max(1000).default(1),
});

export const loadBalancing = z.strictObject({
  algorithm: z.enum(['round_robin', 'least_connections', 'consistent_hash']).default('round_robin'),
  /** consistent_hash only: what the hash is taken over. */
  hash_on: z.enum(['header', 'cookie', 'client_ip', 'path']).default('client_ip'),
  /** Header or cookie name when hash_on is header or cookie. */
  hash_key: z.string().min(1).max(100).optional(),
});

/**
 * The shortest active health-check interval the control plane accepts (every replica probes every
 * target at it) and the shortest a gateway probes at, whatever older events recorded.
 */
export const MIN_HEALTH_CHECK_INTERVAL_SECONDS = 1;

export const healthCheck = z.strictObject({
  active: z
    .strictObject({
      enabled: z.boolean().default(true),
      interval_seconds: z.number().min(0.1).max(3600).default(10),
      timeout_seconds: z.number().min(0.05).max(60).default(2),
      healthy_threshold: z.number().int().min(1).max(100).default(2),
      unhealthy_threshold: z.number().int().min(1).max(100).default(3),
    })
    .prefault({}),
  passive: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Consecutive failures (connect errors, timeouts, 5xx) that eject a target. */
      unhealthy_threshold: z.number().int().min(1).max(100).default(5),
    })
    .prefault({}),
});

export const circuitBreaker = z.strictObject({
  enabled: z.boolean().default(true),
  consecutive_failures: z.number().int().min(1).max(1000).default(5),
  /** Open when the error rate over the last `window_requests` reaches this fraction. */
  error_rate_threshold: z.number().min(0.01).max(1).default(0.5),
  window_requests: z.number().int().min(1).max(10_000).default(20),
  open_seconds: z.number().min(0.1).max(3600).default(30),
  half_open_requests: z.number().int().min(1).max(100).default(1),
});

export const originConfig = z.strictObject({
  id: z.uuid(),
  name: z.string(),
  targets: z.array(originTarget).min(1).max(100),
  health_check_path: z.string().startsWith('/').default('/health'),
  timeout_seconds: z.number().int().min(1).max(300).default(30),
  load_balancing: loadBalancing.prefault({}),
  health_check: healthCheck.prefault({}),
  circuit_breaker: circuitBreaker.prefault({}),
});
export type OriginConfig = z.infer<typeof originConfig>;

export const routeConfig = z.strictObject({
  id: z.uuid(),
  origin_id: z.uuid(),
  path_pattern: z.string(),
  /** Upper-case HTTP methods; empty = any method. */
  methods: z.array(z.string()).default([]),
  priority: z.number().int().default(0),
  auth_mode: authMode,
  required_scopes: z.array(z.string()).default([]),
  /** jwt modes: accept only tokens of the tenant's Clerk org (when the tenant has one). */
  require_tenant_org: z.boolean().default(true),
  /** Removed from the front of the path before forwarding (e.g. "/api": /api/posts/1 → /posts/1). */
  strip_prefix: z.string().nullable().default(null),
  rate_limit: rateLimitPolicy.nullable().default(null),
  cache_policy: cachePolicy.nullable().default(null),
});
export type RouteConfig = z.infer<typeof routeConfig>;

export const oidcProvider = z.strictObject({
  issuer: z.string().min(1),
  audience: z.string().min(1),
  jwks_url: z.url({ protocol: /^https?$/ }),
});

export const tenantSettings = z.strictObject({
  /** Tenant-wide cap applied to every route in addition to the route's own limit. */
  rate_limit: rateLimitPolicy.nullable().default(null),
  /** Generic OAuth2/OIDC access tokens accepted on jwt routes (OAuth token support). */
  oidc: oidcProvider.nullable().default(null),
  /** Service-to-service auth: public JWKs whose private keys sign callers' service tokens. */
  service_jwks: z.array(z.record(z.string(), z.unknown())).max(20).default([]),
  custom_domains: z.array(z.string()).max(50).default([]),
});
export type TenantSettings = z.infer<typeof tenantSettings>;

export const apiKeyEntry = z.strictObject({
  id: z.uuid(),
  /** HMAC-SHA-256(pepper, plaintext) as lowercase hex. Plaintext never leaves the control plane. */
  key_hash: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  scopes: z.array(z.string()),
  expires_at: z.iso.datetime({ offset: true }).nullable(),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntry>;

/** A tenant's TLS certificate for some of its verified custom domains, as gateways serve it. */
export const snapshotCertificate = z.strictObject({
  id: z.uuid(),
  /** Lower-case host names it is served for (each a verified custom domain of the tenant). */
  domains: z.array(z.string()).min(1),
  /** PEM chain, leaf first. */
  certificate_pem: z.string(),
  /** The private key, sealed under CERTIFICATE_ENCRYPTION_KEY: gateways open it in memory only. */
  private_key: sealedPrivateKey,
  fingerprint_sha256: z.string(),
  not_after: z.iso.datetime({ offset: true }),
});
export type SnapshotCertificate = z.infer<typeof snapshotCertificate>;

/** Everything one gateway needs to serve one tenant; versioned by the event position it reflects. */
export const tenantSnapshot = z.strictObject({
  schema_version: z.literal(1),
  tenant_id: z.uuid(),
  /** Global event position (decimal string: a bigint) this snapshot reflects. */
  version: z.string().regex(/^\d+$/),
  /** occurred_at of the newest event folded in; the gateway measures propagation delay from it. */
  event_time: z.iso.datetime({ offset: true }),
  tenant: z.strictObject({
    id: z.uuid(),
    name: z.string(),
    subdomain: z.string(),
    clerk_org_id: z.string().nullable(),
    settings: tenantSettings,
  }),
  origins: z.array(originConfig),
  /** In the order the gateway should match them: priority desc, then specificity. */
  routes: z.array(routeConfig),
  /** Active (not revoked) keys only. */
  api_keys: z.array(apiKeyEntry),
  /** TLS certificates for custom domains (absent in snapshots of earlier versions). */
  certificates: z.array(snapshotCertificate).default([]),
});
export type TenantSnapshot = z.infer<typeof tenantSnapshot>;
