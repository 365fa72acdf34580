import { hash } from 'node:crypto';
import {
  RATE_LIMIT_BOUNDS,
  type RateLimitPolicy,
  type RouteConfig,
  type TenantSnapshot,
} from '../domain/gateway-config.js';
import { clientCountingKey, DEFAULT_CLIENT_IPV6_PREFIX } from '../net/ip-address.js';
import type { LimitSpec } from './limit-spec.js';

export type RateLimitScope = RateLimitPolicy['scope'];

/** One limit that applies to a request, with everything per-request work needs precomputed. */
export interface LimitDescriptor {
  /** Item name in RateLimit-Policy / RateLimit, e.g. "tenant", "route", "route_api_key". */
  readonly name: string;
  readonly scope: RateLimitScope;
  readonly level: 'tenant' | 'route';
  /**
   * Redis key up to the caller's identity, e.g. `rl:{<tenant>}:r:<route>:tb:user:`. The `{tenant}` hash
   * tag keeps all limits of a request on one Cluster slot; the algorithm and its storage format are in
   * the key (ALGORITHM_KEY_PART) so changing either never meets a value of another type.
   */
  readonly keyPrefix: string;
  /** tenant/route scopes: the whole key is fixed. */
  readonly fixedKey: boolean;
  /** Callers counted by address: the network an IPv6 client is counted by (clientCountingKey). */
  readonly ipv6Prefix: number;
  readonly spec: LimitSpec;
  readonly accuracy: 'exact' | 'fast';
  readonly failClosed: boolean;
  /** Units a fast-mode replica leases from Redis at a time. */
  readonly leaseSize: number;
}

export interface CompiledRateLimits {
  readonly tenantId: string;
  readonly routeId: string;
  /** The route's label in the decision counters (the gateway's metrics may fold it into `other`). */
  readonly metricsRoute: string;
  readonly descriptors: readonly LimitDescriptor[];
  /** RateLimit-Policy header value (draft-ietf-httpapi-ratelimit-headers-09), null without limits. */
  readonly policyHeader: string | null;
  /**
   * The rate limiter's decision counters for these limits (three per limit: allowed, limited,
   * store_unavailable), bound on first use and kept here, with the route's compiled limits.
   */
  readonly counters: Array<{ inc(): void } | undefined>;
}

/**
 * Fast mode: a replica leases about this many milliseconds' worth of a limit at a time (see
 * rate-limiter.ts for the error bound it implies).
 */
export const FAST_MODE_LEASE_MS = 100;

/**
 * The most units a fast-mode replica leases in one Redis call, whatever the policy says: leased units
 * not yet spent are what fast mode may admit early or drop (R replicas × the lease, see
 * rate-limiter.ts), so a huge limit does not make that error huge. (A lease is one counter increment
 * in Redis, whatever its size.)
 */
export const MAX_FAST_MODE_LEASE = 1_000;

/**
 * The longest a limit's key lives (an idle token bucket is full again after its refill time; a sliding
 * window's counts no longer count two windows after their own began, at most 2 days): 30 days, a whole
 * number of ms, well within what PEXPIRE accepts.
 */
export const MAX_LIMIT_TTL_MS = RATE_LIMIT_BOUNDS.maxRefillSeconds * 1000;

function clampTtl(ms: number): number {
  return Number.isFinite(ms) ? Math.min(MAX_LIMIT_TTL_MS, Math.max(1, Math.ceil(ms))) : MAX_LIMIT_TTL_MS;
}

/**
 * The rate applied: within the bounds the control plane enforces, also for limits stored before it
 * did (a rate of 1e-300 would make the refill and retry times overflow what Redis returns).
 */
function appliedRate(requestsPerSecond: number): number {
  if (!(requestsPerSecond >= RATE_LIMIT_BOUNDS.minRequestsPerSecond))
    return RATE_LIMIT_BOUNDS.minRequestsPerSecond;
  return Math.min(requestsPerSecond, RATE_LIMIT_BOUNDS.maxRequestsPerSecond);
}

function limitSpec(policy: RateLimitPolicy): LimitSpec {
  if (policy.algorithm === 'sliding_window') {
    const windowSeconds = policy.window_seconds ?? 1;
    const capacity = policy.limit ?? Math.max(1, Math.round(policy.requests_per_second * windowSeconds));
    return {
      algorithm: 'sliding_window',
      capacity,
      ratePerMs: 0,
      windowMs: windowSeconds * 1000,
      ttlMs: clampTtl(2 * windowSeconds * 1000),
    };
  }
  const requestsPerSecond = appliedRate(policy.requests_per_second);
  const capacity = policy.burst ?? Math.max(1, Math.ceil(requestsPerSecond));
  const ratePerMs = requestsPerSecond / 1000;
  return {
    algorithm: 'token_bucket',
    capacity,
    ratePerMs,
    windowMs: 0,
    ttlMs: clampTtl(Math.ceil(capacity / ratePerMs) + 1_000),
  };
}

function leaseSize(spec: LimitSpec): number {
  const perLease =
    spec.algorithm === 'token_bucket'
      ? spec.ratePerMs * FAST_MODE_LEASE_MS
      : (spec.capacity * FAST_MODE_LEASE_MS) / spec.windowMs;
  const size = Math.max(1, Math.min(Math.floor(perLease), Math.floor(spec.capacity / 4) || 1));
  return Math.min(size, MAX_FAST_MODE_LEASE);
}

/** q = units, w = seconds: the burst and the time it takes to refill (token bucket), or the window. */
function policyItem(name: string, spec: LimitSpec): string {
  const seconds =
    spec.algorithm === 'token_bucket'
      ? Math.max(1, Math.ceil(spec.capacity / (spec.ratePerMs * 1000)))
      : spec.windowMs / 1000;
  return `"${name}";q=${spec.capacity};w=${seconds}`;
}

/**
 * The algorithm's part of a limit's key, with its storage format's version: `sw2` is the sliding-window
 * counter (a hash of 4 numbers). `sw` keys were the sliding-window log (a ZSET, one member per admitted
 * request): nothing reads them any more, and they expire within their window (at most a day).
 */
const ALGORITHM_KEY_PART: Record<LimitSpec['algorithm'], string> = {
  token_bucket: 'tb',
  sliding_window: 'sw2',
};

const SCOPE_KEY_PART: Record<RateLimitScope, string> = {
  tenant: '',
  route: '',
  user: 'user:',
  api_key: 'key:',
  ip: 'ip:',
};

function describe(
  tenantId: string,
  routeId: string,
  level: 'tenant' | 'route',
  policy: RateLimitPolicy,
): LimitDescriptor {
  const spec = limitSpec(policy);
  // A tenant-level policy never keys on the route (it is the tenant-wide cap, `route` scope included);
  // a route-level policy always does (`tenant` scope on a route means the route as a whole).
  const whole = policy.scope === 'tenant' || policy.scope === 'route';
  const name = whole ? level : `${level}_${policy.scope}`;
  const algorithm = ALGORITHM_KEY_PART[spec.algorithm];
  const base = level === 'tenant' ? `rl:{${tenantId}}:t:` : `rl:{${tenantId}}:r:${routeId}:`;
  return {
    name,
    scope: whole ? level : policy.scope,
    level,
    keyPrefix: `${base}${algorithm}:${SCOPE_KEY_PART[policy.scope]}`,
    fixedKey: whole,
    ipv6Prefix: policy.ipv6_prefix ?? DEFAULT_CLIENT_IPV6_PREFIX,
    spec,
    accuracy: policy.accuracy,
    failClosed: policy.on_store_failure === 'closed',
    leaseSize: leaseSize(spec),
  };
}

/**
 * Compiled when a snapshot is applied: the tenant-wide cap (tenant.settings.rate_limit) and the route's
 * own limit. Per request only the caller's identity is appended to precomputed key prefixes.
 */
export function compileRateLimits(tenant: TenantSnapshot['tenant'], route: RouteConfig): CompiledRateLimits {
  const descriptors: LimitDescriptor[] = [];
  if (tenant.settings.rate_limit)
    descriptors.push(describe(tenant.id, route.id, 'tenant', tenant.settings.rate_limit));
  if (route.rate_limit) descriptors.push(describe(tenant.id, route.id, 'route', route.rate_limit));
  return {
    tenantId: tenant.id,
    routeId: route.id,
    metricsRoute: route.id,
    descriptors,
    policyHeader:
      descriptors.length > 0 ? descriptors.map((d) => policyItem(d.name, d.spec)).join(', ') : null,
    counters: new Array(descriptors.length * 3),
  };
}

/**
 * Who a limit counts: the caller's identity and address, as the gateway established them. An IPv6
 * client is counted by its network of the limit's `ipv6_prefix` bits, a /64 by default (clientCountingKey).
 */
export interface LimitCaller {
  /** Clerk user id, OIDC subject or calling service. */
  readonly userId?: string | undefined;
  readonly apiKeyId?: string | undefined;
  readonly clientIp: string;
}

/** The longest caller id a limit's key carries as it is; a longer one is keyed by its digest. */
export const MAX_CALLER_KEY_CHARS = 128;

/**
 * A caller id as a key part. A tenant's OIDC provider signs any `sub`, up to the gateway's header bound:
 * as it is, it would make every key of that caller (one per limit, on the shared Redis) kilobytes long.
 * `sha256:` starts no principal (each starts with its kind, see caller-principal.ts) nor `anon-ip:`.
 */
function callerKeyPart(id: string): string {
  return id.length <= MAX_CALLER_KEY_CHARS ? id : `sha256:${hash('sha256', id, 'base64url')}`;
}

/**
 * The caller part of a scoped limit's key every caller shares once its tenant has the most caller keys
 * it may in the shared store: no caller id starts with `~` (see callerKeyPart, limitKey).
 */
export const OVERFLOW_CALLER = '~overflow';

/** The tenant's ledger of its callers' keys in the shared store (before the store's own key prefix). */
export function tenantLedgerKey(tenantId: string): string {
  return `rl:{${tenantId}}:keys`;
}

/** The limit's store key for a caller (before the store's own key prefix). */
export function limitKey(descriptor: LimitDescriptor, caller: LimitCaller): string {
  if (descriptor.fixedKey) return descriptor.keyPrefix;
  switch (descriptor.scope) {
    case 'user':
      if (caller.userId) return descriptor.keyPrefix + callerKeyPart(caller.userId);
      break;
    case 'api_key':
      if (caller.apiKeyId) return descriptor.keyPrefix + callerKeyPart(caller.apiKeyId);
      break;
    default:
      return descriptor.keyPrefix + clientCountingKey(caller.clientIp, descriptor.ipv6Prefix);
  }
  // An anonymous caller of a per-user or per-key limit: by address, in a namespace no id starts with.
  return `${descriptor.keyPrefix}anon-ip:${clientCountingKey(caller.clientIp, descriptor.ipv6Prefix)}`;
}
