import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { MemoryCacheStore } from '../memory-cache-store.js';
import { createResponseCache, type ResponseCache, type ResponseCacheOptions } from '../response-cache.js';

/**
 * A response cache on an in-process store of 1 MB (and an L1 as large), with metrics of its own and
 * only errors logged; `options` sets what a test is about.
 */
export function memoryResponseCache(options: Partial<ResponseCacheOptions> = {}): ResponseCache {
  return createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: new Registry(),
    logger: createLogger({ service: 'test', level: 'error' }),
    ...options,
  });
}
