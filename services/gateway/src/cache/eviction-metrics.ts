import { Counter, type Registry } from 'prom-client';
import type { EvictionReason } from './cache-store.js';

/**
 * `vantageedge_gateway_cache_evictions_total{reason}`: entries the cache store removed to keep a
 * tenant within its byte bound (`lru`), whose bytes it took back after they had expired or been
 * purged (`expired`), or a URL's least recently used variants a new one replaced at the Vary cap
 * (`vary_cap`). Pass the result as the store's onEvicted.
 */
export function cacheEvictionRecorder(registry: Registry): (reason: EvictionReason, count: number) => void {
  const evictions = new Counter({
    name: 'vantageedge_gateway_cache_evictions_total',
    help: 'Cache entries removed to keep a tenant within its byte bound (lru), reclaimed after they expired (expired), or replaced by a new variant of their URL at the Vary cap (vary_cap)',
    labelNames: ['reason'],
    registers: [registry],
  });
  return (reason, count) => evictions.labels({ reason }).inc(count);
}
