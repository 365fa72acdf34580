import { randomUUID } from 'node:crypto';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll } from 'vitest';
import { describeCacheStoreContract } from './cache-store.contract.js';
import { RedisCacheStore } from './redis-cache-store.js';

const redis = createTestRedis('cache-store');
const stores: RedisCacheStore[] = [];

afterAll(async () => {
  for (const store of stores) await store.close();
  await redis.cleanup();
});

describeCacheStoreContract('redis', async (options = {}) => {
  const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix, ...options });
  stores.push(store);
  return { store, tenantId: randomUUID() };
});
