import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { describeLimitStoreContract } from './limit-store.contract.js';
import { RedisLimitStore } from './redis-limit-store.js';

const redis = new Redis(TEST_INFRA.redisUrl);
const prefix = `test:rl-store:${uniqueSuffix()}`;
let counter = 0;

afterAll(async () => {
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describeLimitStoreContract('redis', () => {
  const store = new RedisLimitStore(redis);
  const test = `${prefix}:${++counter}:{tenant}`;
  return { store, key: (name) => `${test}:${name}` };
});
