import { createTestRedisCluster } from '@vantageedge/shared/testing/cluster';
import { afterAll } from 'vitest';
import { admitAheadInRedis, describeLimitStoreContract } from './limit-store.contract.js';
import { RedisLimitStore } from './redis-limit-store.js';

// The same contract as against the single server, on the Redis Cluster: each test uses its own
// `{tenant}` hash tag, so the suite's keys spread over the three masters.
const redis = await createTestRedisCluster('rl-store');
let counter = 0;

afterAll(() => redis.cleanup());

describeLimitStoreContract('redis cluster', () => {
  const store = new RedisLimitStore(redis.client);
  const test = `${redis.prefix}${++counter}:{tenant-${counter}}`;
  return {
    store,
    key: (name) => `${test}:${name}`,
    admitAhead: async (key, spec, windowsAhead, current) => {
      await admitAheadInRedis(redis.client, key, spec, windowsAhead, current);
    },
  };
});
