import { afterAll } from 'vitest';
import { createRedisClient } from '../redis/client.js';
import { createTestRedisCluster, TEST_CLUSTER } from '../testing/cluster.js';
import { describeRolloutContract } from './rollout.contract.js';

const redis = await createTestRedisCluster('rollout');

afterAll(() => redis.cleanup());

describeRolloutContract('redis cluster', () => ({
  redis: redis.client,
  prefix: redis.prefix,
  newClient: () => createRedisClient({ clusterNodes: TEST_CLUSTER.redisNodes, commandTimeoutMs: 2_000 }),
}));
