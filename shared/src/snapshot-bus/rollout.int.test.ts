import { afterAll } from 'vitest';
import { createRedisClient } from '../redis/client.js';
import { TEST_INFRA } from '../testing/infrastructure.js';
import { createTestRedis } from '../testing/redis.js';
import { describeRolloutContract } from './rollout.contract.js';

const redis = createTestRedis('rollout');

afterAll(() => redis.cleanup());

describeRolloutContract('redis', () => ({
  redis: redis.client,
  prefix: redis.prefix,
  newClient: () => createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000 }),
}));
