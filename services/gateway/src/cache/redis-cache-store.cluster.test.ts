import { randomUUID } from 'node:crypto';
import { createTestRedisCluster } from '@vantageedge/shared/testing/cluster';
import { afterAll } from 'vitest';
import { describeCacheStoreContract } from './cache-store.contract.js';
import { RedisCacheStore } from './redis-cache-store.js';

// The same contract as against the single server, on the Redis Cluster: each test's tenant has its own
// `{tenant}` hash tag (its own slot), and purge messages travel over the cluster's pub/sub.
const redis = await createTestRedisCluster('cache-store');
const stores: RedisCacheStore[] = [];

afterAll(async () => {
  for (const store of stores) await store.close();
  await redis.cleanup();
});

describeCacheStoreContract('redis cluster', async (options = {}) => {
  const store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix, ...options });
  stores.push(store);
  return { store, tenantId: randomUUID() };
});
