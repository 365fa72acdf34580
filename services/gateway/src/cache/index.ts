/**
 * The response cache: its API to the request pipeline (the rules it applies: docs/cache.md).
 *
 *   // once per process (the composition root decides the tier behind the L1):
 *   const store = redis ? new RedisCacheStore(redis, { keyPrefix }) : new MemoryCacheStore({ maxBytes });
 *   const cache = createResponseCache({ store, l1MaxBytes, fillBudgetBytes, maxVariantsPerUrl, registry, logger });
 *
 *   // when a snapshot is applied (per route; never per request):
 *   const policy = compileCachePolicy(tenantId, route);               // CompiledCachePolicy | null
 *   void cache.prepareTenant(tenantId);                                 // loads purge generations (async)
 *
 *   // per request, after auth and rate limiting, when the route has a policy:
 *   const headers = endToEndRequestHeaders(req.headers);              // what the origin will receive
 *   const lookup = cache.lookup(policy, { method, path, query, headers }, { userId, apiKeyId });
 *   // a CacheLookup when the L1 answers (HIT, BYPASS), else a Promise of one: await only then.
 *   switch (lookup.outcome) {
 *     case 'HIT':    cache.writeEntry(res, lookup.entry, 'HIT', method); break;
 *     case 'STALE':  cache.writeEntry(res, lookup.entry, 'STALE', method);
 *                    if (lookup.revalidation) refresh in the background, then cache.store(lookup.revalidation, 'GET', upstream)
 *                    (or cache.abandon(lookup.revalidation) on failure); break;
 *     case 'MISS':   X-Cache: MISS; proxy. If lookup.fill (this request leads the fill), when the origin's
 *                    status and headers arrive: const started = cache.beginFill(lookup.fill, method, status, headers);
 *                      'collect'      → stream the body to the client and started.body.push(chunk) each chunk;
 *                                       started.body.end() when it ends, started.body.abort() if it breaks off;
 *                      'not_storable' → stream it through;
 *                      'over_budget'  → stream it through with X-Cache: BYPASS (the fill budget is used up).
 *                    Origin failure before any response: cache.abandon(lookup.fill); with
 *                    lookup.staleIfError, serve that with cache.writeEntry(res, entry, 'STALE', method). break;
 *     case 'BYPASS': X-Cache: BYPASS; proxy; for unsafe methods answered 2xx/3xx then
 *                    cache.invalidatePath(policy, path), also for the same-host Location / Content-Location
 *                    (invalidation-targets.ts), each with the policy of the route that serves its GET.
 *   }
 *
 * `path` is the normalised path (no query), `query` the raw query without '?'. Concurrent misses for
 * one key coalesce: only the leader (the lookup that got `fill`) goes to the origin; the others wait for
 * its fill and are answered HIT (or, if it was not stored, MISS with fill null: go to the origin).
 * Every fill MUST end in end()/abort() (after beginFill), store() or abandon(); a forgotten one expires
 * after coalesceTimeoutMs. cache-stage.ts is this contract wired into the gateway's request pipeline.
 *
 * Stored headers: only the origin's headers that are safe to replay. Hop-by-hop, Age/X-Cache/Content-Length
 * and per-request ones (X-Request-Id, traceparent/tracestate, RateLimit*, Retry-After, Server-Timing,
 * X-VantageEdge-*) are never stored; a HIT keeps the current request's own values.
 *
 * Purge: cache.purgeRoute(tenantId, routeId) / cache.purgeTenant(tenantId) bump a generation in the
 * store and tell every replica (@vantageedge/shared/cache-purge); every replica's L1 follows. Store
 * down: lookups answer BYPASS (after at most one command timeout; then the circuit skips the store)
 * and traffic keeps flowing.
 *
 * Where the cache's parts live (response-cache.ts composes them once per process):
 *   lookup-path.ts          lookup: bypass, L1, store read, coalescing on a key (HIT, STALE, MISS, BYPASS)
 *   cross-replica-fill.ts   the key's lease across replicas: who fetches, who waits for its fill
 *   fill-flights.ts         a replica's fills in flight, the followers they wake (none that came after a purge)
 *   fill-response.ts        the leader's origin response: storable or not, its body collected (beginFill, store)
 *   fill-commit.ts          a filled entry stored in the L1 and the shared store, variants bounded
 *   revalidation.ts         conditional requests for stale entries and the origin's 304 (revalidated)
 *   write-entry.ts          a cached response written to the client (writeEntry)
 *   purge-generations.ts    each tenant's purge generations: loaded, raised by purges, refreshed
 *   shared-store-calls.ts   calls to the shared store through the circuits and the tenant's store slots
 *   ordered-clock.ts        the clock fills, store reads and heard purges are ordered by
 *   invalidations-under-way.ts  this replica's path invalidations the store has not finished
 *   cache-keys.ts, response-tags.ts, lookup-counts.ts, cache-metrics.ts: keys, tags, per-route counts, series
 *   cacheability.ts, standard-freshness.ts, request-directives.ts: the RFC 9111 rules
 */

export type { CacheIdentity, CacheRequest } from '@vantageedge/shared/gateway-policies/cache-key';
export {
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
export type { CacheEntry, CacheRecord, VaryMarker } from './cache-entry.js';
export type { CacheStore, PurgeListener } from './cache-store.js';
export type { UpstreamResponse } from './cacheability.js';
export { MemoryCacheStore } from './memory-cache-store.js';
export { RedisCacheStore } from './redis-cache-store.js';
export {
  type CacheFill,
  type CacheLookup,
  type CacheOutcome,
  createResponseCache,
  type FillBody,
  type FillStart,
  type ResponseCache,
  type ResponseCacheOptions,
} from './response-cache.js';
