/**
 * Rate limiting stage (GW-LIMITS). How the pipeline uses it:
 *
 *   // when a snapshot is applied (per route; never per request):
 *   const limits = compileRateLimits(snapshot.tenant, route);          // CompiledRateLimits
 *
 *   // once per process:
 *   const store = redis ? new RedisLimitStore(redis) : new MemoryLimitStore();  // memory = single-process mode
 *   const limiter = createRateLimiter({ store, registry, logger });
 *
 *   // per request, after auth (identity known), before the cache and the proxy:
 *   if (limits.descriptors.length > 0) {
 *     const decision = await limiter.check(limits, { tenantId, routeId, userId, apiKeyId, clientIp });
 *     if (decision.outcome !== 'allowed') return writeRateLimitRejection(res, decision); // 429 or 503
 *     applyRateLimitHeaders(res, decision);                              // RateLimit-Policy, RateLimit
 *   }
 *
 * One check = at most one Redis round trip (one Lua script for all limits of the request: the tenant-wide
 * cap from tenant.settings.rate_limit and the route's own limit), or none in fast mode while a lease lasts
 * or while Redis is down (circuit open). Limits are all-or-nothing: a refused request charges no limit.
 *
 * Headers follow draft-ietf-httpapi-ratelimit-headers-09 (structured fields):
 *   RateLimit-Policy: "tenant";q=100;w=2, "route_api_key";q=30;w=60   (q = burst or window limit, w = seconds)
 *   RateLimit: "route_api_key";r=12;t=41                              (the limit closest to refusing)
 *   Retry-After: 41                                                   (429 only; seconds)
 * Item names: "tenant" / "route" for whole-tenant / whole-route limits, "<level>_<scope>" for per-caller
 * ones (e.g. "route_user", "tenant_ip"). A per-user or per-key limit applied to an anonymous caller keys on
 * the client IP instead.
 */
export { type CompiledRateLimits, compileRateLimits, type LimitDescriptor } from './compile-rate-limits.js';
export type { LimitStore } from './limit-store.js';
export { MemoryLimitStore } from './memory-limit-store.js';
export {
  createRateLimiter,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimiterOptions,
  type RateLimitIdentity,
} from './rate-limiter.js';
export { RedisLimitStore } from './redis-limit-store.js';
export { applyRateLimitHeaders, writeRateLimitRejection } from './rejection.js';
