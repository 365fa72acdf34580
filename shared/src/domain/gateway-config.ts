import { z } from 'zod';
import { sealedPrivateKey } from '../tls/private-key-envelope.js';
import { storedResourceTags } from './resource-tags.js';
import {
  corsPolicy,
  fixedResponse,
  ipRules,
  MAX_ROUTE_BODY_BYTES,
  MAX_ROUTE_HEADER_BYTES,
  queryTransform,
  redirect,
  requestHeaderTransform,
  reservedNamesRefused,
  responseHeaderTransform,
  retryPolicy,
  rewritePath,
  routeMatch,
  routeTimeouts,
  trafficSplit,
} from './route-policies.js';
import { tenantAuthorizedParties } from './web-origin.js';

/**
 * The gateway-facing configuration of a tenant: the shapes the control plane validates in commands,
 * records in events, and the snapshot projector compiles into a TenantSnapshot for the gateways.
 * snake_case, as in the admin API.
 */

export const AUTH_MODES = ['public', 'jwt_required', 'apikey_required', 'jwt_or_apikey', 'service'] as const;
export const authMode = z.enum(AUTH_MODES);
export type AuthMode = z.infer<typeof authMode>;

export const WEBSOCKET_TOKEN_SOURCES = ['header', 'query', 'subprotocol'] as const;

export const RATE_LIMIT_SCOPES = ['tenant', 'route', 'user', 'api_key', 'ip'] as const;

/**
 * What a tenant admin may set in a rate limit (the control plane answers 400 outside these, see
 * rateLimitRequest in the control plane's request schemas). Every replica runs every tenant's limits
 * against the one shared Redis, so these keep one tenant's numbers from costing the others:
 * - requests_per_second: from 0.001 (one request per ~17 minutes; slower budgets are quotas) to 1,000,000;
 * - burst (token bucket): 1 to 10,000,000, and an empty bucket refills within 30 days (burst / rate);
 * - window_seconds (sliding window): 1 s to 1 day;
 * - the requests a sliding window admits (`limit`, or requests_per_second × window_seconds without
 *   it): at most 10,000,000 per window, like a token bucket's burst the most one limit lets through at
 *   once (a 1-day window of 10,000,000 averages ~116 requests/s). Not a memory bound: a sliding window
 *   is a counter, one hash of 4 numbers in Redis per key, whatever its limit and traffic.
 * The stored shape below keeps its older, looser bounds: events recorded before these existed must
 * still fold into snapshots. The gateway's compiler (compile-rate-limits.ts) makes those safe to run.
 */
export const RATE_LIMIT_BOUNDS = {
  minRequestsPerSecond: 0.001,
  maxRequestsPerSecond: 1_000_000,
  maxBurst: 10_000_000,
  maxWindowSeconds: 86_400,
  maxWindowLimit: 10_000_000,
  /** A token bucket's refill time (burst / requests_per_second), and the longest a limit's key lives. */
  maxRefillSeconds: 30 * 86_400,
} as const;

/** A rate limit as events and snapshots carry it (see RATE_LIMIT_BOUNDS for what a command may set). */
export const rateLimitPolicy = z.strictObject({
  algorithm: z.enum(['token_bucket', 'sliding_window']).default('token_bucket'),
  /** token_bucket: refill rate. sliding_window: default limit is requests_per_second × window_seconds. */
  requests_per_second: z.number().positive().max(RATE_LIMIT_BOUNDS.maxRequestsPerSecond),
  /** token_bucket capacity; defaults to requests_per_second. */
  burst: z.number().int().min(1).max(RATE_LIMIT_BOUNDS.maxBurst).optional(),
  /** sliding_window only: window length and the number of requests it admits. */
  window_seconds: z.number().int().min(1).max(RATE_LIMIT_BOUNDS.maxWindowSeconds).optional(),
  limit: z.number().int().min(1).optional(),
  scope: z.enum(RATE_LIMIT_SCOPES).default('route'),
  /**
   * Counted by address (`ip`, and anonymous callers of `user`/`api_key`): the prefix length an IPv6
   * client is counted by (default 64; IPv4 clients, and those an IPv6 address carries, by their address).
   */
  ipv6_prefix: z.number().int().min(1).max(128).optional(),
  /** exact: one atomic Redis call per request. fast: local spending synced periodically (bounded error). */
  accuracy: z.enum(['exact', 'fast']).default('exact'),
  /** What to do when Redis is unreachable: open = local fallback limiter, closed = 503. */
  on_store_failure: z.enum(['open', 'closed']).default('open'),
});
export type RateLimitPolicy = z.infer<typeof rateLimitPolicy>;

export const CACHE_KEY_PATTERNS = ['path', 'path+query', 'path+query+headers'] as const;

/**
 * standard: the origin's Cache-Control/Expires decide freshness (RFC 9111, a shared cache); override:
 * the policy's ttl_seconds is forced, capped by the origin's s-maxage/max-age.
 */
export const CACHE_MODES = ['standard', 'override'] as const;

/**
 * Statuses a cache never stores, whatever a policy's cacheable_statuses says: they are not a complete
 * response to the URL but an answer to one request's Range or preconditions (206, 304, 412, 416), or
 * not a final response at all (1xx). Served from the key (which holds neither Range nor If-*), they
 * would answer every client with another client's part, or with a 304 for a copy it does not have.
 * The control plane refuses them in cacheable_statuses (400); the gateway ignores them in a snapshot
 * written before that.
 */
export function isCompleteResponseStatus(status: number): boolean {
  return status >= 200 && status !== 206 && status !== 304 && status !== 412 && status !== 416;
}

export const cachePolicy = z.strictObject({
  enabled: z.boolean().default(true),
  mode: z.enum(CACHE_MODES).default('standard'),
  /**
   * override: how long every stored response is fresh. standard: the heuristic freshness of a response
   * without explicit freshness (at most 10% of its age since Last-Modified when it has one).
   */
  ttl_seconds: z.number().int().min(1).max(31_536_000).default(60),
  /** standard mode: allow heuristic freshness (RFC 9111 §4.2.2); false stores only explicit freshness. */
  heuristic_freshness: z.boolean().default(true),
  /** standard mode: honour the client's Cache-Control (no-cache, max-age, min-fresh, max-stale, only-if-cached). */
  honor_request_cache_control: z.boolean().default(true),
  /** standard mode: how long past its freshness an entry with a validator is kept to be revalidated. */
  keep_stale_seconds: z.number().int().min(0).max(2_592_000).default(600),
  /** Response headers whose values tag a stored response for purges by tag (space- or comma-separated). */
  tag_headers: z.array(z.string().min(1).max(100)).max(4).default(['surrogate-key', 'cache-tag']),
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
  /**
   * Statuses stored (complete responses only: see isCompleteResponseStatus, which the control plane's
   * request schema enforces; this schema also reads snapshots and events written before that rule).
   */
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
  weight: z
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(1)
    .describe(
      "the target's share of the origin's requests; 0 drains it (Kong's and APISIX's weight 0): no new request or retry goes to it, requests in flight finish, it is still health-checked and keeps its health and circuit state, and consistent hashing moves only its keys. An origin needs at least one target above 0",
    ),
});

export const loadBalancing = z.strictObject({
  algorithm: z.enum(['round_robin', 'least_connections', 'consistent_hash']).default('round_robin'),
  /** consistent_hash only: what the hash is taken over. */
  hash_on: z.enum(['header', 'cookie', 'client_ip', 'path']).default('client_ip'),
  /** Header or cookie name when hash_on is header or cookie. */
  hash_key: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe(
      "the header or cookie hashed on when hash_on is header or cookie (without it in the request, the client's address). Not a header the gateway writes for the origin (X-Real-IP, X-Forwarded-*, x-vantageedge-*, …: 400; an origin stored before that rule hashes on the client's address); one the gateway passes on only from a trusted proxy (True-Client-IP, CF-Connecting-IP, …) is read only on a trusted proxy's request or when the route's request_headers write it",
    ),
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
      /** Consecutive failures (connect errors, timeouts, 5xx but 501) that eject a target. */
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

/**
 * The longest a gateway waits for a connection to an origin target when the route sets no
 * connect_ms of its own: the origin's timeout_seconds, but never more than this.
 */
export const MAX_ORIGIN_CONNECT_TIMEOUT_MS = 10_000;

/** The most CA certificates an origin's tls.ca_certificates may hold, and the most characters of PEM. */
export const MAX_ORIGIN_CA_CERTIFICATES = 10;
export const MAX_ORIGIN_CA_PEM_CHARS = 64 * 1024;
/** The most tls.verify_depth an origin may set: OpenSSL's own limit, which applies when it sets none. */
export const MAX_ORIGIN_VERIFY_DEPTH = 100;

/**
 * How gateways connect to an origin's https targets (Kong's tls_verify / ca_certificates, APISIX's
 * upstream.tls.verify, Tyk's ssl_insecure_skip_verify): the certificate is verified by default, for the
 * target URL's host (an IP literal against its IP addresses) or `server_name`; with `ca_certificates`
 * only those CAs are trusted for this origin (not the replica's store); with `verify_depth` a chain with
 * more intermediate CAs than that is refused. Ignored for http targets.
 */
export const originTls = z
  .strictObject({
    verify: z
      .boolean()
      .default(true)
      .describe('false: any certificate is accepted (encrypted, not authenticated: a MITM can read it)'),
    ca_certificates: z
      .string()
      .max(MAX_ORIGIN_CA_PEM_CHARS)
      .nullable()
      .default(null)
      .describe(
        `PEM CA certificates (at most ${MAX_ORIGIN_CA_CERTIFICATES}) that alone are trusted for this origin, instead of the gateways' trust store`,
      ),
    server_name: z
      .string()
      .min(1)
      .max(253)
      .nullable()
      .default(null)
      .describe("the SNI and the name verified in the certificate; default: the target URL's host"),
    verify_depth: z
      .number()
      .int()
      .min(0)
      .max(MAX_ORIGIN_VERIFY_DEPTH)
      .nullable()
      .default(null)
      .describe(
        `the most intermediate CA certificates allowed between the origin's certificate and the CA trusted for it (nginx's proxy_ssl_verify_depth, Kong's tls_verify_depth); default: no limit but OpenSSL's ${MAX_ORIGIN_VERIFY_DEPTH}`,
      ),
    client_certificate_id: z
      .uuid()
      .nullable()
      .default(null)
      .describe(
        "one of the tenant's own certificates (POST /api/v1/certificates) the gateways present to the origin when it asks for a client certificate (mTLS)",
      ),
  })
  .describe(
    'how gateways verify the https targets of this origin and which client certificate they present to them (ignored for http targets)',
  );
export type OriginTls = z.infer<typeof originTls>;

export const originConfig = z.strictObject({
  id: z.uuid(),
  name: z.string(),
  targets: z.array(originTarget).min(1).max(100),
  health_check_path: z.string().startsWith('/').default('/health'),
  timeout_seconds: z.number().int().min(1).max(300).default(30),
  load_balancing: loadBalancing.prefault({}),
  health_check: healthCheck.prefault({}),
  circuit_breaker: circuitBreaker.prefault({}),
  /** Absent in snapshots and events recorded before origins had TLS settings: the defaults. */
  tls: originTls.prefault({}),
  /** The admins' labels (resource-tags.ts): kept by the control plane, left out of what gateways are sent. */
  tags: storedResourceTags,
});
export type OriginConfig = z.infer<typeof originConfig>;

export const routeConfig = z.strictObject({
  id: z.uuid(),
  /** Null only for a route that answers itself (fixed_response, redirect) and never calls an origin. */
  origin_id: z.uuid().nullable(),
  path_pattern: z.string(),
  /** Upper-case HTTP methods; empty = any method. */
  methods: z.array(z.string()).default([]),
  priority: z.number().int().default(0),
  auth_mode: authMode,
  required_scopes: z.array(z.string()).default([]),
  /** jwt modes: accept only tokens of the tenant's Clerk org (when the tenant has one). */
  require_tenant_org: z.boolean().default(true),
  /**
   * jwt modes: accept a Clerk session token of any user, not only the tenant's own (its Clerk org's
   * members, or the users in its user list). An explicit opt-in for routes open to every signed-in user.
   */
  allow_any_authenticated_user: z.boolean().default(false),
  /**
   * WebSocket upgrades: where a browser (which cannot set headers on a WebSocket) may put its token.
   * `header` (default): Authorization / X-API-Key only; `query`: also `?access_token=`; `subprotocol`:
   * also a `Sec-WebSocket-Protocol` entry `vantageedge.token.<token>`. The token is removed before
   * the request reaches the origin.
   */
  websocket_token: z.enum(WEBSOCKET_TOKEN_SOURCES).default('header'),
  /** Removed from the front of the path before forwarding (e.g. "/api": /api/posts/1 → /posts/1). */
  strip_prefix: z.string().nullable().default(null),
  rate_limit: rateLimitPolicy.nullable().default(null),
  cache_policy: cachePolicy.nullable().default(null),
  // Route policies (shared/src/domain/route-policies.ts); null (preserve_host: false) = not used on this route.
  /** Conditions beyond path and method: hosts, headers, query. */
  match: routeMatch.nullable().default(null),
  cors: corsPolicy.nullable().default(null),
  /** Overrides the tenant-wide settings.ip_rules for this route. */
  ip_rules: ipRules.nullable().default(null),
  request_headers: requestHeaderTransform.nullable().default(null),
  response_headers: responseHeaderTransform.nullable().default(null),
  rewrite_path: rewritePath.nullable().default(null),
  /**
   * The origin gets the host the client asked for (the one the tenant was resolved from) as its Host,
   * not its target's: Kong's preserve_host, APISIX's pass_host `pass`. Absent before it existed: false.
   */
  preserve_host: z.boolean().default(false),
  query: queryTransform.nullable().default(null),
  timeouts: routeTimeouts.nullable().default(null),
  retries: retryPolicy.nullable().default(null),
  /** Below the gateway's global limits (the lower one applies). */
  max_body_bytes: z.number().int().min(0).max(MAX_ROUTE_BODY_BYTES).nullable().default(null),
  max_header_bytes: z.number().int().min(256).max(MAX_ROUTE_HEADER_BYTES).nullable().default(null),
  traffic_split: trafficSplit.nullable().default(null),
  fixed_response: fixedResponse.nullable().default(null),
  redirect: redirect.nullable().default(null),
  /** The admins' labels (resource-tags.ts): kept by the control plane, left out of what gateways are sent. */
  tags: storedResourceTags,
});
export type RouteConfig = z.infer<typeof routeConfig>;

export const oidcProvider = z.strictObject({
  issuer: z.string().min(1),
  audience: z.string().min(1),
  jwks_url: z.url({ protocol: /^https?$/ }),
});

/** Members of a JWK that only a private or symmetric key has (RFC 7518 §6): never in the config. */
export const PRIVATE_JWK_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/**
 * The largest RSA public exponent accepted in a key that verifies tokens (Go's crypto/rsa has the same
 * bound). Verification costs in proportion to the exponent's length: 65537 is the norm, while a
 * 3072-bit exponent makes each verification about 150 times as costly.
 */
export const MAX_RSA_PUBLIC_EXPONENT = 2 ** 31 - 1;

/** An RSA JWK whose `e` is over MAX_RSA_PUBLIC_EXPONENT (other keys, and malformed ones, are not judged here). */
export function rsaExponentTooLarge(jwk: { readonly kty?: unknown; readonly e?: unknown }): boolean {
  if (jwk.kty !== 'RSA' || typeof jwk.e !== 'string') return false;
  const hex = Buffer.from(jwk.e, 'base64url').toString('hex').replace(/^0+/, '');
  return hex.length > 8 || Number.parseInt(hex || '0', 16) > MAX_RSA_PUBLIC_EXPONENT;
}

/**
 * RSA moduli a token may be verified with. Verification cost grows with the modulus: RSA-2048 ~30 µs,
 * RSA-8192 ~0.3 ms, RSA-16384 ~1 ms of a replica's CPU per token, shared by every tenant of the
 * replica. Identity providers sign with 2048 bits (a few with 3072 or 4096); jose refuses under 2048.
 */
export const MIN_RSA_MODULUS_BITS = 2048;
export const MAX_RSA_MODULUS_BITS = 4096;

/**
 * The curves of EC and OKP keys tokens may be verified with (ES256, EdDSA), and how messages name them.
 * P-384 (ES384) and P-521 (ES512) are token algorithms' curves too, but each verification with them
 * costs a replica ~0.6 ms and ~1.2 ms of CPU (P-256 ~0.1 ms, RSA-2048 ~50 µs, RSA-8192 ~0.3 ms,
 * measured together): dearer than the RSA keys refused above, shared by every tenant of the replica.
 */
const SIGNING_CURVES: Readonly<Record<string, { curves: readonly string[]; listed: string }>> = {
  EC: { curves: ['P-256'], listed: 'P-256' },
  OKP: { curves: ['Ed25519'], listed: 'Ed25519' },
};

/** Curves of a token algorithm that are not SIGNING_CURVES for what verifying with them costs. */
const COSTLY_CURVES: ReadonlySet<string> = new Set(['P-384', 'P-521']);

/** The length in bits of a base64url big-endian unsigned integer. */
function bitLength(base64url: string): number {
  const hex = Buffer.from(base64url, 'base64url').toString('hex').replace(/^0+/, '');
  return hex.length === 0
    ? 0
    : (hex.length - 1) * 4 + Number.parseInt(hex[0] as string, 16).toString(2).length;
}

/**
 * The most operations a key's `key_ops` may list: those RFC 7517 §4.3 registers, each at most once.
 * jose judges the list on every token, against every key of the set and before the kid, with a scan
 * that grows with the square of its length: 9,900 of them (80 KB) cost ~120 ms of CPU per token.
 */
export const MAX_KEY_OPERATIONS = 8;

/**
 * The key types tokens are verified with. jose verifies with others a runtime offers: ML-DSA keys (kty
 * AKP, still experimental in Node) cost ~0.24 ms per verification at ML-DSA-87, as much as RSA-8192.
 */
const SIGNING_KEY_TYPES: ReadonlySet<string> = new Set(['RSA', 'EC', 'OKP']);

/**
 * The token algorithms jose verifies with a key of each type, on the curves of SIGNING_CURVES: a key
 * whose `alg` is another is never chosen for a token.
 */
const KEY_ALGORITHMS: ReadonlyMap<string, readonly string[]> = new Map([
  ['RSA', ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']],
  ['EC', ['ES256']],
  ['OKP', ['EdDSA', 'Ed25519']],
]);

type KeyRefusal = { member: 'kty' | 'n' | 'e' | 'crv' | 'key_ops' | 'ext' | 'alg'; issue: string };

/**
 * Why a public JWK is not one tokens may be verified with (a key type, a costly RSA key or curve, a
 * curve no token algorithm uses, a list of operations costly to judge, members that make jose pass the
 * key over for every token: key_ops without verify, an ext that is no boolean, an alg not the key's),
 * naming its member; undefined when it may be, or when it is malformed (loading it judges that).
 */
export function verificationKeyRefusal(jwk: {
  readonly kty?: unknown;
  readonly n?: unknown;
  readonly e?: unknown;
  readonly crv?: unknown;
  readonly key_ops?: unknown;
  readonly ext?: unknown;
  readonly alg?: unknown;
}): KeyRefusal | undefined {
  if (typeof jwk.kty === 'string' && !SIGNING_KEY_TYPES.has(jwk.kty)) {
    return { member: 'kty', issue: `must be RSA, EC or OKP: tokens are not verified with ${jwk.kty} keys` };
  }
  const operations = keyOperationsIssue(jwk.key_ops);
  if (operations !== undefined) return { member: 'key_ops', issue: operations };
  if (jwk.ext !== undefined && typeof jwk.ext !== 'boolean') {
    return {
      member: 'ext',
      issue: 'must be true or false when given: tokens are never verified with this key',
    };
  }
  return (jwk.kty === 'RSA' ? rsaKeyRefusal(jwk) : curveRefusal(jwk)) ?? algorithmRefusal(jwk);
}

/** Why a key's `key_ops` make it costly to judge or never used to verify; undefined without them. */
function keyOperationsIssue(operations: unknown): string | undefined {
  if (operations === undefined) return undefined;
  if (!Array.isArray(operations)) {
    return 'must be a list of operations that includes verify: tokens are never verified with this key';
  }
  // Before anything scans the list: judging a long one costs the square of its length.
  if (operations.length > MAX_KEY_OPERATIONS) {
    return `must list at most ${MAX_KEY_OPERATIONS} operations (those RFC 7517 registers, each once), not ${operations.length}: a longer list makes every verification costly`;
  }
  if (
    !operations.every(
      (operation, index) => typeof operation === 'string' && operations.indexOf(operation) === index,
    )
  ) {
    return 'must name each operation once, as text: tokens are never verified with this key';
  }
  if (!operations.includes('verify')) {
    return 'must list verify when given: tokens are never verified with a key whose operations leave it out';
  }
  return undefined;
}

function rsaKeyRefusal(jwk: {
  readonly kty?: unknown;
  readonly n?: unknown;
  readonly e?: unknown;
}): KeyRefusal | undefined {
  if (typeof jwk.n === 'string') {
    const bits = bitLength(jwk.n);
    if (bits < MIN_RSA_MODULUS_BITS || bits > MAX_RSA_MODULUS_BITS) {
      const why =
        bits > MAX_RSA_MODULUS_BITS
          ? 'a longer one makes every verification costly'
          : 'tokens are never verified with a shorter one';
      return {
        member: 'n',
        issue: `must be a modulus of ${MIN_RSA_MODULUS_BITS} to ${MAX_RSA_MODULUS_BITS} bits, not ${bits}: ${why}`,
      };
    }
  }
  if (rsaExponentTooLarge(jwk)) {
    return {
      member: 'e',
      issue: `must be at most ${MAX_RSA_PUBLIC_EXPONENT} (65537 is usual): a longer exponent makes every verification costly`,
    };
  }
  return undefined;
}

function curveRefusal(jwk: { readonly kty?: unknown; readonly crv?: unknown }): KeyRefusal | undefined {
  // A remote key set names kty: `constructor` would find Object.prototype's.
  const signing =
    typeof jwk.kty === 'string' && Object.hasOwn(SIGNING_CURVES, jwk.kty)
      ? SIGNING_CURVES[jwk.kty]
      : undefined;
  if (signing !== undefined && typeof jwk.crv === 'string' && !signing.curves.includes(jwk.crv)) {
    const why = COSTLY_CURVES.has(jwk.crv)
      ? `${jwk.crv} makes every verification costly`
      : `tokens are never verified with ${jwk.crv}`;
    return { member: 'crv', issue: `must be ${signing.listed}: ${why}` };
  }
  return undefined;
}

function algorithmRefusal(jwk: { readonly kty?: unknown; readonly alg?: unknown }): KeyRefusal | undefined {
  const algorithms = typeof jwk.kty === 'string' ? KEY_ALGORITHMS.get(jwk.kty) : undefined;
  if (algorithms === undefined || jwk.alg === undefined) return undefined;
  if (typeof jwk.alg === 'string' && algorithms.includes(jwk.alg)) return undefined;
  const listed = algorithms.length === 1 ? algorithms[0] : `one of ${algorithms.join(', ')}`;
  return {
    member: 'alg',
    issue: `must be ${listed} when given, an algorithm of ${jwk.kty} keys: a token is verified only with a key whose alg is the token's`,
  };
}

export const SERVICE_SCOPE = /^[A-Za-z0-9:._/-]+$/;

/** A public signing key of a service, named by its `kid` (the key a service token's header names). */
export const servicePublicJwk = z
  .looseObject({
    kty: z.enum(['RSA', 'EC', 'OKP'], { error: 'must be an asymmetric key type: RSA, EC or OKP' }),
    kid: z
      .string({ error: 'is required: a service token names its key by kid' })
      .min(1, 'must not be empty')
      .max(200, 'must be at most 200 characters'),
    use: z.literal('sig', { error: 'must be "sig" when given' }).optional(),
    alg: z.string().max(20).optional(),
  })
  .superRefine((jwk, ctx) => {
    for (const member of PRIVATE_JWK_MEMBERS) {
      if (member in jwk) {
        ctx.addIssue({
          code: 'custom',
          path: [member],
          message: 'is a private key member: register the public key only',
        });
      }
    }
  });
export type ServicePublicJwk = z.infer<typeof servicePublicJwk>;

/**
 * A service key as a command may give it. A JWK may carry members beyond those named here, and those
 * pass through as sent, except `__proto__` (dropped silently by every copy of the object), `constructor`
 * and `prototype` (RESERVED_MAP_KEYS): refused naming the member. Stored keys load as before.
 */
const servicePublicJwkInput = z.intersection(servicePublicJwk, reservedNamesRefused);

/**
 * A calling service: the only identity (`sub`) its keys may sign tokens for, and the most its tokens
 * may carry (a token's scopes are cut down to these). With `command`, its keys as a command may give them.
 */
const serviceAccountOf = (command: boolean) =>
  z.strictObject({
    id: z
      .string()
      .min(1, 'must not be empty')
      .max(200, 'must be at most 200 characters')
      .regex(/^[A-Za-z0-9._:@/-]+$/, 'must be letters, digits or ._:@/-'),
    keys: z
      .array(command ? servicePublicJwkInput : servicePublicJwk)
      .min(1, 'needs at least one public key')
      .max(10, 'at most 10 keys'),
    scopes: z
      .array(z.string().min(1).max(100).regex(SERVICE_SCOPE, 'must be letters, digits or :._/-'))
      .max(50, 'at most 50 scopes')
      .default([]),
  });
export const serviceAccount = serviceAccountOf(false);
export type ServiceAccount = z.infer<typeof serviceAccount>;

const serviceAccountsOf = (command: boolean) =>
  z
    .array(serviceAccountOf(command))
    .max(20, 'at most 20 service accounts')
    .superRefine((accounts, ctx) => {
      const ids = new Set<string>();
      const kids = new Map<string, string>();
      accounts.forEach((account, index) => {
        if (ids.has(account.id)) {
          ctx.addIssue({
            code: 'custom',
            path: [index, 'id'],
            message: `service "${account.id}" is listed twice`,
          });
        }
        ids.add(account.id);
        account.keys.forEach((key, keyIndex) => {
          const owner = kids.get(key.kid);
          if (owner !== undefined) {
            ctx.addIssue({
              code: 'custom',
              path: [index, 'keys', keyIndex, 'kid'],
              message: `kid "${key.kid}" is already a key of service "${owner}": a key belongs to one service`,
            });
          }
          kids.set(key.kid, account.id);
        });
      });
    });
const serviceAccounts = serviceAccountsOf(false);
/** service_accounts as a command may give them (see servicePublicJwkInput). */
export const serviceAccountsInput = serviceAccountsOf(true);

/**
 * A request quota: how many requests an API key (or a whole tenant) may make per UTC calendar day
 * and/or month. Every gateway replica counts against the same counters (Redis), so the limit holds
 * across replicas; over it a request is refused with 429 `quota_exceeded` until the period ends.
 */
export const quotaPolicy = z
  .strictObject({
    requests_per_day: z.number().int('must be an integer').min(1).max(1_000_000_000_000).optional(),
    requests_per_month: z.number().int('must be an integer').min(1).max(1_000_000_000_000).optional(),
  })
  .refine((quota) => quota.requests_per_day !== undefined || quota.requests_per_month !== undefined, {
    message: 'needs requests_per_day or requests_per_month',
  });
export type QuotaPolicy = z.infer<typeof quotaPolicy>;

/** Default bound on the bytes of one tenant's entries in the shared response cache (256 MiB). */
export const DEFAULT_TENANT_CACHE_MAX_BYTES = 256 * 1024 * 1024;
/** The platform's ceiling on a tenant's cache bound (4 GiB): no tenant setting may go above it. */
export const TENANT_CACHE_MAX_BYTES_LIMIT = 4 * 1024 * 1024 * 1024;
/** The smallest bound a tenant may set (1 KiB). */
export const TENANT_CACHE_MIN_BYTES = 1024;

/** Tenant-wide response cache settings. */
export const tenantCacheSettings = z.strictObject({
  /** Bytes the tenant's entries may take in the shared cache store; the least recently used go first. */
  max_bytes: z.number().int().min(TENANT_CACHE_MIN_BYTES).max(TENANT_CACHE_MAX_BYTES_LIMIT),
});

export const tenantSettings = z.strictObject({
  /** Tenant-wide cap applied to every route in addition to the route's own limit. */
  rate_limit: rateLimitPolicy.nullable().default(null),
  /** Generic OAuth2/OIDC access tokens accepted on jwt routes (OAuth token support). */
  oidc: oidcProvider.nullable().default(null),
  /**
   * The origins of the tenant's own web apps: a Clerk session token on its jwt routes must carry one
   * of them as `azp` (the page it was minted for), or it is a 401. Null: the gateways'
   * CLERK_AUTHORIZED_PARTIES, which lists every tenant's apps.
   */
  authorized_parties: tenantAuthorizedParties.nullable().default(null).meta({
    description:
      "origins of the tenant's own web apps (e.g. https://app.example.com): a Clerk session token on its jwt routes must carry one as azp, else 401 invalid_token; null: the gateways' CLERK_AUTHORIZED_PARTIES (every tenant's apps)",
  }),
  /** Service-to-service auth: each calling service, its public keys and the scopes it may use. */
  service_accounts: serviceAccounts.default([]),
  /** Tenant-wide IP allow/deny lists: every route without its own ip_rules applies them. */
  ip_rules: ipRules.nullable().default(null),
  /** Requests the whole tenant may make per day/month, over all its routes and callers. */
  quota: quotaPolicy.optional(),
  /** The tenant's share of the response cache (absent: the gateway's GATEWAY_CACHE_TENANT_MAX_BYTES). */
  cache: tenantCacheSettings.optional(),
});
export type TenantSettings = z.infer<typeof tenantSettings>;

/**
 * Settings fields of earlier versions, still present in stored events, that nothing may act on:
 * `custom_domains` (unverified host names: domains are now claimed and verified one by one) and
 * `service_jwks` (keys bound to no service identity). Readers of stored settings drop them.
 */
export const LEGACY_SETTINGS_FIELDS: readonly string[] = ['custom_domains', 'service_jwks'];

export function withoutLegacySettings(settings: unknown): unknown {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return settings;
  const copy: Record<string, unknown> = { ...(settings as Record<string, unknown>) };
  for (const field of LEGACY_SETTINGS_FIELDS) delete copy[field];
  return copy;
}

/** Settings as stored in events and earlier snapshots: legacy fields are ignored, never applied. */
export const storedTenantSettings = z.preprocess(withoutLegacySettings, tenantSettings);

export const apiKeyEntry = z.strictObject({
  id: z.uuid(),
  /** HMAC-SHA-256(pepper, plaintext) as lowercase hex. Plaintext never leaves the control plane. */
  key_hash: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string(),
  scopes: z.array(z.string()),
  expires_at: z.iso.datetime({ offset: true }).nullable(),
  /** Requests this key may make per day/month (snapshots before quotas have none). */
  quota: quotaPolicy.nullable().default(null),
});
export type ApiKeyEntry = z.infer<typeof apiKeyEntry>;

/** A custom domain whose ownership was proven (DNS TXT) or that a platform admin assigned. */
export const snapshotCustomDomain = z.strictObject({
  domain: z.string(),
  /**
   * Global position of the event that verified it. Two tenants claiming one host on a replica (a
   * domain moving between tenants, snapshots arriving out of order) are decided by it: the earlier
   * claim keeps the host, whatever order the snapshots were applied in.
   */
  verified_position: z.string().regex(/^\d+$/),
});
export type SnapshotCustomDomain = z.infer<typeof snapshotCustomDomain>;

export const snapshotUser = z.strictObject({ id: z.uuid(), clerk_user_id: z.string() });
export type SnapshotUser = z.infer<typeof snapshotUser>;

/**
 * A tenant's TLS certificate, as gateways serve it for some of its verified custom domains and present
 * it to the origins that name it (tls.client_certificate_id).
 */
export const snapshotCertificate = z.strictObject({
  id: z.uuid(),
  /** Lower-case host names it is served for (each a verified custom domain of the tenant); none: a client certificate only. */
  domains: z.array(z.string()),
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
    /** Position of the event that gave the tenant this subdomain (decides a clash, as for domains). */
    subdomain_position: z.string().regex(/^\d+$/).optional(),
    clerk_org_id: z.string().nullable(),
    settings: storedTenantSettings,
  }),
  /** Verified custom domains only: a pending one never reaches a gateway. */
  custom_domains: z.array(snapshotCustomDomain).default([]),
  /** The tenant's users (its user list): who may call its jwt routes when it has no Clerk org. */
  users: z.array(snapshotUser).default([]),
  origins: z.array(originConfig),
  /** In the order the gateway should match them: priority desc, then specificity. */
  routes: z.array(routeConfig),
  /** Active (not revoked) keys only. */
  api_keys: z.array(apiKeyEntry),
  /** TLS certificates for verified custom domains (absent in snapshots of earlier versions). */
  certificates: z.array(snapshotCertificate).default([]),
});
export type TenantSnapshot = z.infer<typeof tenantSnapshot>;
