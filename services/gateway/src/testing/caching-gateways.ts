import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { createLogger, type Logger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import type { Registry } from 'prom-client';
import { createCacheStage } from '../cache/cache-stage.js';
import type { CacheStore } from '../cache/cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import type { RoutePolicy } from '../pipeline/stage.js';
import { startTestGateway, type TestGateway } from './gateway-harness.js';

/** A test gateway whose pipeline ends in the cache stage of its own response cache. */
export interface CachingTestGateway extends TestGateway {
  readonly cache: ResponseCache;
  /** The cache's series (and those of the stages before it); the gateway's own are in `registry`. */
  readonly cacheRegistry: Registry;
  /** Closes the gateway, then the cache; the store's Redis connection stays the caller's. */
  close(): Promise<void>;
}

/**
 * A test gateway serving `snapshot`, whose pipeline runs the stages `before` returns (none by default)
 * and then the cache stage of a response cache on `store` (1 MB in each replica's memory), its series
 * in a registry named `name`. The tenant's cache is prepared before it resolves.
 */
export async function startCachingGateway(options: {
  name: string;
  store: CacheStore;
  snapshot: TenantSnapshot;
  maxVariantsPerUrl?: number;
  /** The cache's clock (Date.now by default). */
  now?: () => number;
  before?: (registry: Registry, logger: Logger) => RoutePolicy[];
}): Promise<CachingTestGateway> {
  const logger = createLogger({ service: 'test', level: 'error' });
  const cacheRegistry = createMetricsRegistry(options.name, { defaultMetrics: false });
  const cache = createResponseCache({
    store: options.store,
    l1MaxBytes: 1_000_000,
    registry: cacheRegistry,
    logger,
    maxVariantsPerUrl: options.maxVariantsPerUrl,
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const stages = [...(options.before?.(cacheRegistry, logger) ?? []), createCacheStage(cache)];
  const gateway = await startTestGateway({}, { stages });
  gateway.store.apply(options.snapshot);
  await cache.prepareTenant(options.snapshot.tenant_id);
  return {
    ...gateway,
    cache,
    cacheRegistry,
    close: async () => {
      await gateway.close();
      await cache.close();
    },
  };
}
