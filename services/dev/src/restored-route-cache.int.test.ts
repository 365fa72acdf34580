import {
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '@vantageedge/control-plane/testing/control-plane-harness';
import {
  type CacheRequest,
  type CompiledCachePolicy,
  compileCachePolicy,
  createResponseCache,
  MemoryCacheStore,
  type ResponseCache,
} from '@vantageedge/gateway/cache/index';
import { cachePolicy, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `make dev` hands the control plane the in-process gateway's response cache as its purger
 * (start-dev.ts), whose purge generations live as long as the process and are never forgotten. A route
 * a config apply or rollback restores under its old id must not serve what it cached before its delete
 * there either. Regression: the control plane purged a restored route only when its purger could forget
 * a deleted route's generation (the Redis one), so in dev mode the entries were served again.
 */
let cp: ControlPlaneHarness;
let cache: ResponseCache;

beforeAll(async () => {
  cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('restored-route-cache', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  cp = await startControlPlane({ withReadSide: true, cachePurger: cache });
}, 60_000);

afterAll(async () => {
  await cp?.close();
  await cache?.close();
});

const request: CacheRequest = { method: 'GET', path: '/posts/1', query: '', headers: {} };

async function outcome(policy: CompiledCachePolicy): Promise<string> {
  const lookup = await cache.lookup(policy, request, {});
  if (lookup.outcome === 'MISS' && lookup.fill) cache.abandon(lookup.fill);
  return lookup.outcome;
}

describe('a route restored under its old id in single-process mode', () => {
  it('never serves what it cached before it was deleted', async () => {
    const tenantId = json(
      await cp.request('POST', '/api/v1/tenants', {
        body: { name: 'Restored', subdomain: 'restored-cache' },
      }),
    )['id'] as string;
    const originId = json(
      await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: 'o', url: 'http://127.0.0.1:9' },
      }),
    )['id'] as string;
    const created = await cp.request('POST', '/api/v1/routes', {
      body: {
        tenant_id: tenantId,
        origin_id: originId,
        path_pattern: '/posts/*',
        auth_mode: 'public',
        cache_policy: { enabled: true, ttl_seconds: 300, cache_key_pattern: 'path' },
      },
    });
    expect(created.status).toBe(201);
    const routeId = json(created)['id'] as string;
    const policy = compileCachePolicy(
      tenantId,
      routeConfig.parse({
        id: routeId,
        origin_id: originId,
        path_pattern: '/posts/*',
        auth_mode: 'public',
        cache_policy: cachePolicy.parse({ ttl_seconds: 300, cache_key_pattern: 'path' }),
      }),
    )!;
    await cache.prepareTenant(tenantId);
    const miss = await cache.lookup(policy, request, {});
    if (miss.outcome !== 'MISS' || !miss.fill)
      throw new Error(`expected to lead a fill, got ${miss.outcome}`);
    await cache.store(miss.fill, 'GET', { status: 200, headers: {}, body: Buffer.from('before the delete') });
    expect(await outcome(policy)).toBe('HIT');

    expect((await cp.request('DELETE', `/api/v1/routes/${routeId}`)).status).toBe(204);
    const rolledBack = await cp.request('POST', `/api/v1/tenants/${tenantId}/config/rollback`, {
      body: { to_position: created.headers.get('x-event-position') },
    });
    expect(rolledBack.status, JSON.stringify(rolledBack.body)).toBe(200);
    expect(json(rolledBack)['changes']).toEqual([
      expect.objectContaining({ change: 'restored', id: routeId }),
    ]);

    expect(await outcome(policy)).toBe('MISS');
  });
});
