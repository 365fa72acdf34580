/**
 * Response cache stage (GW-LIMITS). How the pipeline uses it:
 *
 *   // once per process:
 *   const store = redis ? new RedisCacheStore(redis, { keyPrefix }) : new MemoryCacheStore({ maxBytes });
 *   const cache = createResponseCache({ store, l1MaxBytes, registry, logger });
 *
 *   // when a snapshot is applied (per route):
 *   const policy = compileCachePolicy(tenantId, route);               // CompiledCachePolicy | null
 *   void cache.prepareTenant(tenantId);                                 // loads purge generations (async)
 *
 *   // per request, after auth and rate limiting, when the route has a policy:
 *   const lookup = await cache.lookup(policy, { method, path, query, headers }, { userId, apiKeyId });
 *   switch (lookup.outcome) {
 *     case 'HIT':    cache.writeEntry(res, lookup.entry, 'HIT', method); break;
 *     case 'STALE':  cache.writeEntry(res, lookup.entry, 'STALE', method);
 *                    if (lookup.revalidation) refresh in the background, then cache.store(lookup.revalidation, 'GET', upstream)
 *                    (or cache.abandon(lookup.revalidation) on failure); break;
 *     case 'MISS':   proxy; collect the body up to policy.maxBodyBytes (null beyond);
 *                    if (lookup.fill) await cache.store(lookup.fill, method, { status, headers, body }) —
 *                    or cache.abandon(lookup.fill) if the origin failed; on origin failure with
 *                    lookup.staleIfError, serve it with cache.writeEntry(res, entry, 'STALE', method);
 *                    respond with X-Cache: MISS; break;
 *     case 'BYPASS': proxy with X-Cache: BYPASS; for unsafe methods then await cache.invalidatePath(policy, path).
 *   }
 *
 * `path` is the normalised path (no query) and `query` the raw query without '?'. Concurrent misses for
 * one key coalesce: only the leader (the lookup that got `fill`) goes to the origin; the others wait for
 * its store() and are answered HIT (or, if it was not cacheable, MISS with fill null: go to the origin).
 * Every fill MUST end in store() or abandon() (a forgotten one expires after coalesceTimeoutMs).
 *
 * Stored headers: only the origin's headers that are safe to replay. Hop-by-hop, Age/X-Cache/Content-Length
 * and per-request ones (X-Request-Id, traceparent/tracestate, RateLimit*, Retry-After, Server-Timing,
 * X-VantageEdge-*) are never stored nor replayed; a HIT keeps the current request's own values.
 *
 * Purge: cache.purgeRoute(tenantId, routeId) / cache.purgeTenant(tenantId) bump a generation in the
 * store and tell every replica (@vantageedge/shared/cache-purge); every replica's L1 follows. Store
 * down: lookups answer BYPASS (after at most one command timeout; then the circuit skips the store)
 * and traffic keeps flowing. Eviction: entries expire after fresh + max(stale-while-revalidate,
 * stale-if-error) seconds; run Redis with `maxmemory` and `maxmemory-policy allkeys-lru` so cache
 * pressure evicts old entries, not errors.
 */

export type { CacheEntry, CacheRecord, VaryMarker } from './cache-entry.js';
export type { CacheIdentity, CacheRequest } from './cache-key.js';
export type { CacheStore, PurgeListener } from './cache-store.js';
export type { UpstreamResponse } from './cacheability.js';
export { type CompiledCachePolicy, compileCachePolicy } from './compile-cache-policy.js';
export { MemoryCacheStore } from './memory-cache-store.js';
export { RedisCacheStore } from './redis-cache-store.js';
export {
  type CacheFill,
  type CacheLookup,
  type CacheOutcome,
  createResponseCache,
  type ResponseCache,
  type ResponseCacheOptions,
} from './response-cache.js';
