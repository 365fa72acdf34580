import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generationKey } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import {
  createClerkTestKeys,
  OFFLINE_CLERK_ISSUER,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { controlPlaneAppFromSettings } from '../app-from-settings.js';
import { controlPlaneSettings } from '../settings.js';

/**
 * The gateways may keep their response cache in a Redis of its own (GATEWAY_CACHE_REDIS_URL) apart from
 * the counters and heartbeats (REDIS_URL): a purge must bump the generation where the gateways read it.
 */
describe('cache purges with the gateways’ cache in its own Redis (private redis-servers)', () => {
  const ADMIN = 'user_cache_redis_admin';
  const keyPrefix = `ve-test-cache-redis-purge-${uniqueSuffix()}:`;
  let countersServer: PrivateRedisServer;
  let cacheServer: PrivateRedisServer;
  let counters: RedisClient;
  let cache: RedisClient;
  let db: TestDatabase;
  let server: Server;
  let baseUrl: string;
  let token: string;

  beforeAll(async () => {
    [countersServer, cacheServer] = await Promise.all([startPrivateRedisServer(), startPrivateRedisServer()]);
    counters = createRedisClient({ url: countersServer.url, commandTimeoutMs: 2_000, name: 'counters' });
    cache = createRedisClient({ url: cacheServer.url, commandTimeoutMs: 2_000, name: 'cache' });
    await Promise.all([whenReady(counters), whenReady(cache)]);
    db = await createTestDatabase();
    const keys = await createClerkTestKeys();
    token = await signClerkToken(keys, { userId: ADMIN });
    const settings = parseSettings(controlPlaneSettings, {
      DATABASE_URL: db.url,
      API_KEY_PEPPER: 'cache-redis-purge-pepper-0123456789abcdef',
      CLERK_JWT_KEY: keys.publicKeyPem,
      CLERK_ISSUER: OFFLINE_CLERK_ISSUER,
      PLATFORM_ADMIN_USER_IDS: ADMIN,
      REDIS_URL: countersServer.url,
      GATEWAY_CACHE_REDIS_URL: cacheServer.url,
      GATEWAY_REDIS_KEY_PREFIX: keyPrefix,
    });
    const app = controlPlaneAppFromSettings(settings, {
      store: createEventStore({ kind: 'postgres', pool: db.pool }),
      pool: db.pool,
      logger: createLogger({ service: 'control-plane-test', level: 'error' }),
      metrics: createMetricsRegistry('control-plane', { defaultMetrics: false }),
      redis: counters,
      cacheRedis: cache,
    });
    server = await new Promise((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await db?.drop();
    counters?.disconnect();
    cache?.disconnect();
    await Promise.all([countersServer?.stop(), cacheServer?.stop()]);
  });

  const post = (path: string, body: unknown) =>
    fetch(`${baseUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('POST /tenants/:id/cache/purge bumps the generation in the cache’s Redis, none in the counters’', async () => {
    const subdomain = `split${uniqueSuffix()}`;
    const created = await post('/api/v1/tenants', { name: subdomain, subdomain });
    expect(created.status).toBe(201);
    const tenantId = String(((await created.json()) as Record<string, unknown>)['id']);

    expect((await post(`/api/v1/tenants/${tenantId}/cache/purge`, {})).status).toBe(200);

    const generations = generationKey(keyPrefix, tenantId);
    expect(await cache.exists(generations)).toBe(1);
    expect(await counters.exists(generations)).toBe(0);
  });
});
