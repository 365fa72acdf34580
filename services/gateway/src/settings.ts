import { hostname } from 'node:os';
import {
  DEFAULT_TENANT_CACHE_MAX_BYTES,
  TENANT_CACHE_MAX_BYTES_LIMIT,
  TENANT_CACHE_MIN_BYTES,
} from '@vantageedge/shared/domain/gateway-config';
import { cidrListSetting } from '@vantageedge/shared/net/address-ranges';
import { isLoopbackHost } from '@vantageedge/shared/net/loopback-host';
import { originBlockedCidrsSetting } from '@vantageedge/shared/net/origin-address-policy';
import { clerkIssuerOf } from '@vantageedge/shared/settings/clerk-issuer';
import {
  booleanFlag,
  clerkAuthorizedParties,
  clerkIssuer,
  clerkJwtKey,
  observabilitySettings,
  platformBaseDomainSettings,
  port,
  redisKeyPrefix,
} from '@vantageedge/shared/settings/common-settings';
import { developmentSecretProblems } from '@vantageedge/shared/settings/development-secrets';
import { assertDistinctListeners } from '@vantageedge/shared/settings/listener-addresses';
import { parseSettings, SettingsError } from '@vantageedge/shared/settings/load-settings';
import { certificateEncryptionSettings } from '@vantageedge/shared/tls/settings';
import { quotaStoreSettings } from '@vantageedge/shared/usage/quota-store';
import { z } from 'zod';
import { TENANT_TOKEN_CACHE_SHARE } from './auth/token-cache.js';
import { DEFAULT_STORE_MAX_ENTRY_BYTES } from './cache/redis-cache-store.js';
import { TENANT_MEMORY_SHARE } from './cache/tenant-memory-share.js';
import {
  STORE_BYTES_IN_FLIGHT,
  TENANT_STORE_BYTES,
  TENANT_STORE_CALLS,
  TENANT_STORE_QUEUE,
} from './cache/tenant-store-slots.js';
import { trustedProxiesFromSettings } from './proxy/client-address.js';
import { DEFAULT_TENANT_MAX_LIMIT_KEYS } from './ratelimit/redis-limit-store.js';
import { USAGE_LIMIT_DEFAULTS } from './usage/usage-recorder.js';

/** The gateway's settings, by environment variable name (documented in .env.example). */
export const gatewaySettings = {
  GATEWAY_PORT: port.default(8000),
  GATEWAY_ADMIN_PORT: port.default(8001),
  /** Interface both listeners bind to. */
  GATEWAY_HOST: z.string().min(1).default('0.0.0.0'),
  /** PLATFORM_BASE_DOMAINS (or its earlier name GATEWAY_BASE_DOMAINS): read with platformBaseDomains(). */
  ...platformBaseDomainSettings,
  API_KEY_PEPPER: z.string().min(32, 'must be at least 32 characters'),
  /**
   * Clerk's PEM public key: tokens verified without a network call (RSA-2048 only). Line breaks may
   * be written as \n (one-line env files), as the control plane accepts.
   */
  CLERK_JWT_KEY: clerkJwtKey.optional(),
  /** Without CLERK_JWT_KEY, Clerk's JWKS is fetched (and cached) with this key. */
  CLERK_SECRET_KEY: z.string().min(1).optional(),
  /** Clerk's Backend API; with CLERK_SECRET_KEY its JWKS is read from `<url>/v1/jwks`. */
  CLERK_API_URL: z.string().url().default('https://api.clerk.com'),
  /**
   * Origins of the tenants' web apps whose Clerk tokens are taken: a token's `azp` must be one of them
   * (a token without azp is refused too). Unset: any azp.
   */
  CLERK_AUTHORIZED_PARTIES: clerkAuthorizedParties.optional(),
  /**
   * The `iss` of the Clerk instance's session tokens (its Frontend API URL), as the control plane takes
   * it: a token signed with the instance's key but naming another issuer is refused. Default: the one
   * CLERK_PUBLISHABLE_KEY names; with neither, the issuer is not checked, and a token Clerk's key
   * verifies is a Clerk token even where it names a tenant's OIDC issuer.
   */
  CLERK_ISSUER: clerkIssuer.optional(),
  CLERK_PUBLISHABLE_KEY: z
    .string()
    .regex(/^pk_(test|live)_/, 'must start with pk_test_ or pk_live_')
    .optional(),
  /** Least time between two fetches of one JWKS (Clerk's, a tenant's OIDC), successful or not. */
  GATEWAY_JWKS_COOLDOWN_SECONDS: z.coerce.number().min(1).max(3600).default(30),
  /** Failed authentications per tenant, client IP and minute before 429 too_many_auth_failures; 0 = no limit. */
  GATEWAY_AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(0).default(30),
  /**
   * The network an IPv6 client is counted by in the replica's per-client counts (failed
   * authentications, connections, origin pool shares): 64, one subscriber's; 56 or 48 when clients are
   * handed those (each /64 of a /48 would be a client of its own), 128 each address.
   */
  GATEWAY_CLIENT_IPV6_PREFIX: z.coerce.number().int().min(32).max(128).default(64),
  /** The same across all tenants, per client IP; unset: ten times GATEWAY_AUTH_FAILURES_PER_MINUTE. */
  GATEWAY_AUTH_FAILURES_PER_MINUTE_ALL_TENANTS: z.coerce.number().int().min(1).optional(),
  GATEWAY_MAX_HEADER_BYTES: z.coerce.number().int().min(1024).max(1_048_576).default(16_384),
  GATEWAY_MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(10 * 1024 * 1024),
  /** `keep` forwards %2F inside a segment; `reject` answers 400 (a %2F decoded by an origin can bypass routes). */
  GATEWAY_ENCODED_SLASHES: z.enum(['reject', 'keep']).default('reject'),
  /** Fraction of requests below 500 that get an access-log line; 5xx are always logged. */
  GATEWAY_ACCESS_LOG_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(1),
  /** Access-log lines waiting to be written (bytes, about); when stdout cannot keep up, lines past it are dropped and counted. */
  GATEWAY_ACCESS_LOG_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(4096)
    .default(4 * 1024 * 1024),
  /** Unique per replica (rollout reports, /status); default hostname-pid. */
  GATEWAY_REPLICA_ID: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,200}$/)
    .default(`${hostname()}-${process.pid}`),
  /** Verified tokens kept in memory (each until its exp) so RS256 is not re-verified per request. */
  GATEWAY_TOKEN_CACHE_SIZE: z.coerce.number().int().min(0).default(10_000),
  /** What those tokens (their text and identities) may take in memory; 0 = off. */
  GATEWAY_TOKEN_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(32 * 1024 * 1024),
  /**
   * The part of both token-cache bounds (entries and bytes) one tenant's tokens may hold, in (0, 1];
   * past it the tenant's own least recently used tokens are dropped, so a tenant minting endless valid
   * tokens cannot evict the others'. 1: no per-tenant bound (one shared LRU).
   */
  GATEWAY_TOKEN_CACHE_TENANT_SHARE: z.coerce.number().gt(0).max(1).default(TENANT_TOKEN_CACHE_SHARE),
  /** Presented API keys whose HMAC is kept in memory so it is not recomputed per request; 0 = off. */
  GATEWAY_API_KEY_CACHE_SIZE: z.coerce.number().int().min(0).default(10_000),
  /** Size bound of the in-process response cache (L1) in bytes; 1 turns it off (every HIT from Redis). */
  GATEWAY_CACHE_L1_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(64 * 1024 * 1024),
  /**
   * The part of the L1 (and, without Redis, of the in-memory store) one tenant's cached entries may
   * hold, in (0, 1]; past it the tenant's own least recently used entries go, so a tenant whose clients
   * ask for endless distinct URLs cannot push the others' entries out. 1: one shared LRU.
   */
  GATEWAY_CACHE_L1_TENANT_SHARE: z.coerce.number().gt(0).max(1).default(TENANT_MEMORY_SHARE),
  /**
   * Redis commands issued in the same turn of the event loop (concurrent requests' limit checks and
   * cache reads) leave as one pipeline (ioredis enableAutoPipelining) instead of one write each.
   */
  GATEWAY_REDIS_AUTO_PIPELINING: booleanFlag.default(true),
  /**
   * The largest cache record (body, headers, metadata) written to the shared Redis: one write, and every
   * HIT's read, moves it in one command while Redis serves no other tenant. Larger responses are kept
   * in the filling replica's L1 only.
   */
  GATEWAY_CACHE_STORE_MAX_ENTRY_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(DEFAULT_STORE_MAX_ENTRY_BYTES),
  /**
   * One tenant's share of the replica's cache commands to Redis (one connection for every tenant, where
   * a large reply holds up every command behind it): calls in flight, bytes they are expected to move,
   * and calls waiting; past the queue that tenant's lookups bypass the cache.
   */
  GATEWAY_CACHE_STORE_TENANT_CALLS: z.coerce.number().int().min(1).max(1_000).default(TENANT_STORE_CALLS),
  GATEWAY_CACHE_STORE_TENANT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(TENANT_STORE_BYTES),
  GATEWAY_CACHE_STORE_TENANT_QUEUE: z.coerce.number().int().min(0).max(10_000).default(TENANT_STORE_QUEUE),
  /**
   * Bytes the cache commands of every tenant in flight on a replica are expected to move together,
   * shared fairly between the tenants using it: what Redis moves well within REDIS_COMMAND_TIMEOUT_MS,
   * so a command sent behind all of them does not time out.
   */
  GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1024 * 1024 * 1024)
    .default(STORE_BYTES_IN_FLIGHT),
  /**
   * Bytes all in-flight cache fills of a replica may buffer together; beyond it, responses stream
   * through uncached (X-Cache: BYPASS). Each fill buffers up to its policy's max_body_bytes.
   */
  GATEWAY_CACHE_FILL_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024 * 1024),
  /**
   * Bytes the bodies of retryable requests (read so they can be sent again, each at most 64 KiB) may
   * hold together in a replica; one tenant's requests hold at most a quarter. A body that does not
   * fit is sent once, without retries.
   */
  GATEWAY_RETRY_BUFFER_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024 * 1024),
  /**
   * Default bound on the bytes of one tenant's cached entries in the shared store (Redis, or the
   * in-memory store without Redis); past it the tenant's least recently used entries are evicted.
   * A tenant's `settings.cache.max_bytes` overrides it.
   */
  GATEWAY_CACHE_TENANT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(TENANT_CACHE_MIN_BYTES)
    .max(TENANT_CACHE_MAX_BYTES_LIMIT)
    .default(DEFAULT_TENANT_CACHE_MAX_BYTES),
  /** Variants stored per URL when the origin's responses vary (Vary); a new one replaces the least recently used. */
  GATEWAY_CACHE_MAX_VARIANTS: z.coerce.number().int().min(1).max(1_000).default(16),
  /**
   * The most per-caller rate-limit keys (a user, API key or address of a scoped limit) one tenant keeps
   * in the shared Redis; past it, a caller without a key is counted on its limit's shared overflow key.
   */
  GATEWAY_RATE_LIMIT_TENANT_MAX_KEYS: z.coerce
    .number()
    .int()
    .min(1)
    .max(100_000_000)
    .default(DEFAULT_TENANT_MAX_LIMIT_KEYS),
  ...quotaStoreSettings,
  /** Prepended to the gateway's rate-limit and cache keys in Redis (several deployments on one Redis). */
  GATEWAY_REDIS_KEY_PREFIX: redisKeyPrefix,
  /**
   * How often the replica hands its request counts (usage) to Redis as one batch; the usage flusher
   * moves them into PostgreSQL. A replica that dies without a graceful stop loses at most this much.
   */
  GATEWAY_USAGE_FLUSH_INTERVAL_MS: z.coerce.number().int().min(100).max(600_000).default(5_000),
  /**
   * Usage cardinality limits, per replica and UTC hour (over all its batches of the hour): distinct
   * users one tenant's usage cells name (the others are counted as user `*`), cells in all (the breakdown by route, key, user, status
   * class and hour), and cells one tenant may hold (at most GATEWAY_USAGE_MAX_CELLS); past a cell limit
   * a tenant's requests go to its overflow cell (route, key and user `*`). Totals stay exact.
   */
  GATEWAY_USAGE_MAX_USERS_PER_TENANT: z.coerce
    .number()
    .int()
    .min(0)
    .max(1_000_000)
    .default(USAGE_LIMIT_DEFAULTS.maxUsersPerTenant),
  GATEWAY_USAGE_MAX_CELLS: z.coerce
    .number()
    .int()
    .min(100)
    .max(10_000_000)
    .default(USAGE_LIMIT_DEFAULTS.maxCells),
  GATEWAY_USAGE_MAX_CELLS_PER_TENANT: z.coerce
    .number()
    .int()
    .min(1)
    .max(10_000_000)
    .default(USAGE_LIMIT_DEFAULTS.maxCellsPerTenant),
  /** Interface of the admin listener (/healthz, /readyz, /status, /metrics); loopback unless opened. */
  GATEWAY_ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  /**
   * When set, /status and /metrics on the admin listener require `Authorization: Bearer <this>`;
   * required when GATEWAY_ADMIN_HOST is not loopback (/status names every tenant, subdomain and custom
   * domain, /metrics every tenant's routes and traffic).
   */
  GATEWAY_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Time a client has to send the complete request headers (slow-loris bound). */
  GATEWAY_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(10_000),
  /** Time a client has to send the whole request, body included; not less than the headers timeout. */
  GATEWAY_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(3_600_000).default(120_000),
  /** How long an idle keep-alive client connection is kept open. */
  GATEWAY_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(5_000),
  /**
   * An HTTP/1.1 connection whose client takes none of the response bytes waiting for it for this long is
   * closed (nginx's send_timeout; 0 = never). HTTP/2 streams have GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS.
   * An open WebSocket whose client or origin takes none of the frames waiting for it this long is closed.
   */
  GATEWAY_SEND_TIMEOUT_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),
  /** Most header lines in one request; more is answered 431. */
  GATEWAY_MAX_HEADERS_COUNT: z.coerce.number().int().min(10).max(2_000).default(100),
  /** Open client connections this replica accepts; connections beyond are closed at once. */
  GATEWAY_MAX_CONNECTIONS: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Open client connections one client address (an IPv6 client by its network,
   * GATEWAY_CLIENT_IPV6_PREFIX) may hold on this replica, each HTTP/2 request beside the first of its
   * session counted as one more (so HTTP/2 carries no more of an address's requests than HTTP/1.1);
   * more connections are closed at once, more HTTP/2 requests answered 429 client_limit (0 = no limit).
   * Peers in GATEWAY_TRUSTED_PROXIES are not limited.
   */
  GATEWAY_MAX_CONNECTIONS_PER_CLIENT: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
  /**
   * Open WebSockets (upgrades waiting for their origin included) one tenant may hold on this replica;
   * past it an upgrade is refused 503 websocket_limit. Unset: half of GATEWAY_MAX_CONNECTIONS; when
   * set, below GATEWAY_MAX_CONNECTIONS (room for the other tenants), or 0 = no limit.
   */
  GATEWAY_MAX_WEBSOCKETS_PER_TENANT: z.coerce.number().int().min(0).max(1_000_000).optional(),
  /**
   * The part of its tenant's GATEWAY_MAX_WEBSOCKETS_PER_TENANT one client may hold (its address as
   * resolved through trusted proxies, an IPv6 client by GATEWAY_CLIENT_IPV6_PREFIX); past it an upgrade
   * is refused 429 websocket_client_limit. Behind a load balancer no per-connection bound applies to a
   * client, and one client's idle WebSockets took every slot of its tenant. 0 = no share kept.
   */
  GATEWAY_WEBSOCKET_CLIENT_SHARE: z.coerce.number().min(0).max(1).default(0.25),
  /**
   * Requests one tenant may have in flight to its origins on this replica (each holds at most one origin
   * socket), retries and requests waiting for a pooled connection included; past it a request is refused
   * 503 tenant_upstream_limit before any origin. Unset: half of GATEWAY_MAX_CONNECTIONS; 0 = no limit.
   */
  GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: z.coerce.number().int().min(0).max(1_000_000).optional(),
  /**
   * Passes through the platform a request may already have made (its CDN-Loop `vantageedge` entries):
   * one arriving with this many is answered 508 loop_detected before anything else of its route runs.
   * 2 lets one tenant's route front another tenant on the platform and stops a loop on its second
   * return, so a looping request costs at most three passes instead of one per hop until a limit.
   */
  GATEWAY_MAX_LOOP_HOPS: z.coerce.number().int().min(1).max(20).default(2),
  /**
   * The pseudonym of the Via entry (RFC 9110 §7.6.3) the gateway appends to every request it forwards
   * (`vantageedge`: `1.1 vantageedge`); `off`, the default, sends none: nginx (`gzip_proxied off`, its
   * default) stops compressing answers to requests that carry a Via, and most origins are nginx or
   * behind it. A token: it names no host, port or version of its own.
   */
  GATEWAY_VIA: z
    .string()
    .regex(
      /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/,
      'must be a token (RFC 9110 §5.6.2) of at most 64 characters, or off',
    )
    .default('off'),
  /** Requests served on one keep-alive connection before it is closed (0 = no limit). */
  GATEWAY_MAX_REQUESTS_PER_CONNECTION: z.coerce.number().int().min(0).max(1_000_000).default(1_000),
  /** After SIGTERM: /readyz answers 503 and the listener keeps accepting this long (load balancers notice). */
  GATEWAY_DRAIN_SECONDS: z.coerce.number().min(0).max(300).default(5),
  /** After the drain: how long requests in flight may take before their connections are closed. */
  GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: z.coerce.number().min(0).max(600).default(20),
  /**
   * Estimated milliseconds of this replica's thread one tenant's origin TLS handshakes may spend checking
   * certificates, per second (the refill of a per-tenant bucket): OpenSSL checks every certificate an
   * origin sends, up to ≈ 0.5–1 s for a hostile chain. Past it the tenant's new https connections to its
   * origins are answered 503 origin_tls_budget (a health probe is skipped). An ordinary handshake
   * (RSA-2048 or P-256 chain) is estimated at 0.3–0.5 ms.
   */
  GATEWAY_ORIGIN_TLS_CHECK_MS_PER_SECOND: z.coerce.number().min(1).max(1_000).default(100),
  /** What one tenant's origin TLS handshakes may spend at once before the per-second budget applies. */
  GATEWAY_ORIGIN_TLS_CHECK_BURST_MS: z.coerce.number().min(1).max(60_000).default(1_000),
  /**
   * The most origin TLS handshakes of one tenant in progress at once on this replica (others wait their
   * turn within the connect timeout): each is charged once over, so this bounds what a burst of new
   * connections to an origin of unknown cost can cost before the first is charged (≈ 0.5–1 s each).
   */
  GATEWAY_ORIGIN_TLS_HANDSHAKES_PER_TENANT: z.coerce.number().int().min(1).max(1_000).default(4),
  /** Active health probes this replica sends per second over all origins; over it, probes are skipped. */
  GATEWAY_HEALTH_PROBES_PER_SECOND: z.coerce.number().int().min(1).max(100_000).default(200),
  /**
   * Active health probes one tenant may have in flight on this replica over all its origins, and probe
   * sockets it may keep open, idle ones included (past it its longest idle are closed); a probe past it is
   * skipped. Apart from GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: probes and requests never take each
   * other's sockets. 0 = no limit.
   */
  GATEWAY_MAX_PROBE_SOCKETS_PER_TENANT: z.coerce.number().int().min(0).max(100_000).default(64),
  /**
   * Connections (so requests in flight) each origin target's pool has on this replica, as Envoy's
   * max_connections / max_requests per cluster. A stream of server-sent events or a long poll holds one
   * for as long as it lasts: past this many at once a target's further requests wait for one (504 after
   * their response-head timeout), so an origin serving more streams needs more. A tenant's requests in
   * flight stay bounded by GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT whatever this is.
   */
  GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET: z.coerce.number().int().min(1).max(100_000).default(128),
  /**
   * Requests that may wait for a free connection in one origin target's pool
   * (GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET); past it a request is answered 503 upstream_queue_full at
   * once (Envoy's max_pending_requests).
   */
  GATEWAY_UPSTREAM_MAX_QUEUED_REQUESTS: z.coerce.number().int().min(1).max(1_000_000).default(1024),
  /**
   * The part of an origin target's pooled connections (GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET) one client address (an IPv6 client by its
   * /64; not a trusted proxy) may hold with requests in flight, waiting ones included: past it a request
   * is answered 429 client_upstream_limit at once (nginx's `limit_conn` per address, counted per target).
   * A client not reading its responses holds its connections until the body timeout, so without it one
   * client kept the tenant's other clients from the target. 0 = no limit.
   */
  GATEWAY_UPSTREAM_CLIENT_SHARE: z.coerce.number().min(0).max(1).default(0.75),
  /**
   * Label the request and upstream latency histograms by route (tenant × route series); false keeps
   * them per tenant only, for deployments with many routes.
   */
  GATEWAY_METRICS_PER_ROUTE: booleanFlag.default(true),
  /**
   * Route ids that may be a `route` label on this replica at once, over all tenants (latency, retries,
   * rate-limit decisions, cache lookups and hit ratio); routes compiled past it are counted under
   * route="other" in their tenant. A label with traffic of three status classes is ~70 lines (~11 KiB)
   * of every scrape, up to ~130 with all six: 1,000 keep a scrape near 11 MiB (docs/deployment.md).
   */
  GATEWAY_METRICS_MAX_ROUTE_SERIES: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  /** The part of GATEWAY_METRICS_MAX_ROUTE_SERIES one tenant's routes may hold, in (0, 1]. */
  GATEWAY_METRICS_ROUTE_SERIES_TENANT_SHARE: z.coerce.number().gt(0).max(1).default(0.1),
  /**
   * Upstream targets that may be a `target` label on this replica at once, over all tenants (health,
   * circuit state, picks, in-flight, transitions and probes); targets built past it are counted under
   * target="other" of their origin. A target is 4 lines of every scrape with no traffic, up to 15 with
   * every transition: a tenant at its limits (1,000 targets) alone would be up to 15,000 lines.
   */
  GATEWAY_METRICS_MAX_TARGET_SERIES: z.coerce.number().int().min(0).max(1_000_000).default(1000),
  /** The part of GATEWAY_METRICS_MAX_TARGET_SERIES one tenant's targets may hold, in (0, 1]. */
  GATEWAY_METRICS_TARGET_SERIES_TENANT_SHARE: z.coerce.number().gt(0).max(1).default(0.1),
  /** TLS listener (HTTPS and HTTP/2 with ALPN h2); unset: no TLS listener. */
  GATEWAY_TLS_PORT: port.optional(),
  /** The default certificate (PEM chain, leaf first) for the base domains and unknown SNI names. */
  GATEWAY_TLS_CERT_FILE: z.string().min(1).optional(),
  GATEWAY_TLS_KEY_FILE: z.string().min(1).optional(),
  /** How often the default certificate files are checked for a change (a renewed certificate is served without restart). */
  GATEWAY_TLS_RELOAD_SECONDS: z.coerce.number().min(0.1).max(3600).default(10),
  /** Also accept cleartext HTTP/2 with prior knowledge (h2c) on GATEWAY_PORT, next to HTTP/1.1. */
  GATEWAY_H2C: booleanFlag.default(false),
  /**
   * HTTP/2 listeners (TLS and h2c) announce SETTINGS_ENABLE_CONNECT_PROTOCOL and proxy WebSockets opened
   * with an extended CONNECT (RFC 8441), as browsers then do on a connection they already hold; off, such
   * clients open their WebSockets over HTTP/1.1.
   */
  GATEWAY_HTTP2_WEBSOCKETS: booleanFlag.default(true),
  /** HTTP/2: streams one client connection may have open at once. */
  GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS: z.coerce.number().int().min(1).max(10_000).default(100),
  /** HTTP/2: a connection with no open stream for this long is closed (GOAWAY); 0 keeps it open. */
  GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS: z.coerce.number().min(0).max(86_400).default(120),
  /** A proxied WebSocket with no traffic either way for this long is closed with 1001; 0 = never. */
  GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: z.coerce.number().min(0).max(86_400).default(300),
  /**
   * How long past the moment its credentials stop being accepted (a token's `exp` with the clock skew
   * its verification allows, an API key's `expires_at`) an open WebSocket is closed with 1008: 0 at
   * that moment; `off`: never (only a snapshot withdrawing its admission, the idle timeout or a close).
   */
  GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS: z
    .union([z.literal('off'), z.coerce.number().int().min(0).max(86_400)])
    .default(0),
  /**
   * CIDR ranges of the load balancers/proxies in front of the gateway. Only a peer in them has its
   * X-Forwarded-* / Forwarded / client-address headers kept; the client is the rightmost
   * X-Forwarded-For address not in these ranges. Empty: every peer is the client.
   */
  GATEWAY_TRUSTED_PROXIES: cidrListSetting.default([]),
  /** Deprecated: `true` means GATEWAY_TRUSTED_PROXIES = private and loopback ranges (when that is unset). */
  GATEWAY_TRUST_PROXY: booleanFlag.optional(),
  /**
   * `on`: both traffic listeners (GATEWAY_PORT, GATEWAY_TLS_PORT) require a PROXY protocol header (v1 or
   * v2) from a peer in GATEWAY_TRUSTED_PROXIES before anything else, and take the client address from it
   * (nginx's `listen … proxy_protocol`); any other connection is closed. For layer-4 balancers (AWS NLB,
   * HAProxy in TCP mode) that hide the client's address.
   */
  GATEWAY_PROXY_PROTOCOL: z.enum(['off', 'on']).default('off'),
  /**
   * Addresses the gateway never connects to for a tenant (origins, health checks, OIDC JWKS), checked
   * after DNS resolution; its own listeners are refused whatever this says.
   */
  ORIGIN_BLOCKED_CIDRS: originBlockedCidrsSetting,
  /** Single-process dev mode (`make dev`): accept development tokens signed by the dev key pair. */
  VANTAGEEDGE_DEV_MODE: booleanFlag.default(false),
  ...certificateEncryptionSettings,
  ...observabilitySettings,
};

export type GatewaySettings = z.infer<z.ZodObject<typeof gatewaySettings>>;

/** Rules across settings that zod checks one by one cannot express; throws SettingsError. */
export function assertGatewaySettings(
  settings: Pick<
    GatewaySettings,
    | 'GATEWAY_HEADERS_TIMEOUT_MS'
    | 'GATEWAY_REQUEST_TIMEOUT_MS'
    | 'GATEWAY_MAX_CONNECTIONS'
    | 'GATEWAY_MAX_WEBSOCKETS_PER_TENANT'
    | 'GATEWAY_PORT'
    | 'GATEWAY_HOST'
    | 'GATEWAY_ADMIN_PORT'
    | 'GATEWAY_TLS_PORT'
    | 'GATEWAY_TLS_CERT_FILE'
    | 'GATEWAY_TLS_KEY_FILE'
    | 'GATEWAY_ADMIN_HOST'
    | 'GATEWAY_ADMIN_TOKEN'
    | 'API_KEY_PEPPER'
    | 'CERTIFICATE_ENCRYPTION_KEY'
    | 'VANTAGEEDGE_DEV_MODE'
    | 'CLERK_ISSUER'
    | 'CLERK_PUBLISHABLE_KEY'
    | 'GATEWAY_CACHE_STORE_TENANT_BYTES'
    | 'GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT'
    | 'GATEWAY_PROXY_PROTOCOL'
    | 'GATEWAY_TRUSTED_PROXIES'
    | 'GATEWAY_TRUST_PROXY'
  >,
): void {
  const devSecrets = developmentSecretProblems(settings);
  if (devSecrets.length > 0) throw new SettingsError(devSecrets);
  // A publishable key is only there to name the issuer: one that names none would leave it unchecked.
  if (settings.CLERK_PUBLISHABLE_KEY && clerkIssuerOf(settings) === undefined) {
    throw new SettingsError([
      {
        setting: 'CLERK_PUBLISHABLE_KEY',
        issue:
          'does not name a Clerk Frontend API (pk_test_/pk_live_ + base64 of "<host>$"); set CLERK_ISSUER instead',
      },
    ]);
  }
  if (settings.GATEWAY_ADMIN_TOKEN === undefined && !isLoopbackHost(settings.GATEWAY_ADMIN_HOST)) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_ADMIN_TOKEN',
        issue:
          'is required when GATEWAY_ADMIN_HOST is not a loopback address (/status and /metrics list every tenant, its hosts and its traffic to whoever reaches the admin port)',
      },
    ]);
  }
  if (settings.GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT < settings.GATEWAY_CACHE_STORE_TENANT_BYTES) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_CACHE_STORE_BYTES_IN_FLIGHT',
        issue: `must be at least GATEWAY_CACHE_STORE_TENANT_BYTES (${settings.GATEWAY_CACHE_STORE_TENANT_BYTES}): it is the bound of every tenant's store calls together`,
      },
    ]);
  }
  if (settings.GATEWAY_PROXY_PROTOCOL === 'on' && trustedProxiesFromSettings(settings).ranges.length === 0) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_PROXY_PROTOCOL',
        issue:
          'needs GATEWAY_TRUSTED_PROXIES (the load balancers that send the PROXY header): with no trusted peer every connection would be closed',
      },
    ]);
  }
  if (settings.GATEWAY_REQUEST_TIMEOUT_MS < settings.GATEWAY_HEADERS_TIMEOUT_MS) {
    throw new SettingsError([
      { setting: 'GATEWAY_REQUEST_TIMEOUT_MS', issue: 'must not be less than GATEWAY_HEADERS_TIMEOUT_MS' },
    ]);
  }
  const webSockets = settings.GATEWAY_MAX_WEBSOCKETS_PER_TENANT;
  if (webSockets !== undefined && webSockets > 0 && webSockets >= settings.GATEWAY_MAX_CONNECTIONS) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_MAX_WEBSOCKETS_PER_TENANT',
        issue:
          'must be less than GATEWAY_MAX_CONNECTIONS (one tenant’s WebSockets would leave no connection for the others), or 0 for no limit',
      },
    ]);
  }
  assertDefaultCertificateSettings(settings);
  assertDistinctListeners([
    { host: settings.GATEWAY_HOST, port: settings.GATEWAY_PORT, portSetting: 'GATEWAY_PORT' },
    {
      host: settings.GATEWAY_ADMIN_HOST,
      port: settings.GATEWAY_ADMIN_PORT,
      portSetting: 'GATEWAY_ADMIN_PORT',
    },
    ...(settings.GATEWAY_TLS_PORT === undefined
      ? []
      : [{ host: settings.GATEWAY_HOST, port: settings.GATEWAY_TLS_PORT, portSetting: 'GATEWAY_TLS_PORT' }]),
  ]);
}

/**
 * The default certificate and its key come as a pair, and only with the TLS listener that serves them:
 * a file named without it would be silently unused (an operator believing HTTPS is on).
 */
function assertDefaultCertificateSettings(
  settings: Pick<GatewaySettings, 'GATEWAY_TLS_PORT' | 'GATEWAY_TLS_CERT_FILE' | 'GATEWAY_TLS_KEY_FILE'>,
): void {
  const certificate = settings.GATEWAY_TLS_CERT_FILE !== undefined;
  const key = settings.GATEWAY_TLS_KEY_FILE !== undefined;
  if (certificate !== key || (settings.GATEWAY_TLS_PORT !== undefined && !certificate)) {
    const needs =
      settings.GATEWAY_TLS_PORT !== undefined
        ? 'GATEWAY_TLS_PORT'
        : certificate
          ? 'GATEWAY_TLS_CERT_FILE'
          : 'GATEWAY_TLS_KEY_FILE';
    throw new SettingsError([
      {
        setting: certificate ? 'GATEWAY_TLS_KEY_FILE' : 'GATEWAY_TLS_CERT_FILE',
        issue: `is required with ${needs} (the TLS listener's default certificate and its key)`,
      },
    ]);
  }
  if (settings.GATEWAY_TLS_PORT === undefined && certificate) {
    throw new SettingsError([
      {
        setting: 'GATEWAY_TLS_PORT',
        issue:
          'is required with GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE (without it no TLS listener serves them)',
      },
    ]);
  }
}

/**
 * How long after SIGTERM the gateway process exits whatever its stop is doing: the drain, the shutdown
 * timeout for requests in flight, then up to 15 s to write the last usage batch and close the config
 * plane, pools, Redis and Kafka. A supervisor's grace period must be longer (docker-compose.yml).
 */
export function gatewayStopDeadlineSeconds(
  settings: Pick<GatewaySettings, 'GATEWAY_DRAIN_SECONDS' | 'GATEWAY_SHUTDOWN_TIMEOUT_SECONDS'>,
): number {
  return settings.GATEWAY_DRAIN_SECONDS + settings.GATEWAY_SHUTDOWN_TIMEOUT_SECONDS + 15;
}

/** GATEWAY_MAX_WEBSOCKETS_PER_TENANT, or when unset half of GATEWAY_MAX_CONNECTIONS (0 = no limit). */
export function webSocketsPerTenant(
  settings: Pick<GatewaySettings, 'GATEWAY_MAX_CONNECTIONS' | 'GATEWAY_MAX_WEBSOCKETS_PER_TENANT'>,
): number {
  return settings.GATEWAY_MAX_WEBSOCKETS_PER_TENANT ?? halfOfMaxConnections(settings);
}

/** GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS in ms; null when `off` (expiry never closes a WebSocket). */
export function webSocketCredentialGraceMs(
  settings: Pick<GatewaySettings, 'GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS'>,
): number | null {
  const grace = settings.GATEWAY_WEBSOCKET_CREDENTIAL_GRACE_SECONDS;
  return grace === 'off' ? null : grace * 1000;
}

/**
 * GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT, or when unset half of GATEWAY_MAX_CONNECTIONS (0 = no limit):
 * as many origin sockets as half the client connections the open-file limit is sized for, so a tenant
 * whose origins never answer leaves the replica descriptors for the other tenants' requests.
 */
export function upstreamRequestsPerTenant(
  settings: Pick<GatewaySettings, 'GATEWAY_MAX_CONNECTIONS' | 'GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT'>,
): number {
  return settings.GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT ?? halfOfMaxConnections(settings);
}

/** One tenant's default share of what the replica's connections bound. */
const halfOfMaxConnections = (settings: Pick<GatewaySettings, 'GATEWAY_MAX_CONNECTIONS'>): number =>
  Math.max(1, Math.floor(settings.GATEWAY_MAX_CONNECTIONS / 2));

/** For tests: parse and throw instead of exiting. */
export function parseGatewaySettings(env: Record<string, string | undefined>): GatewaySettings {
  const settings = parseSettings(gatewaySettings, env);
  assertGatewaySettings(settings);
  return settings;
}
