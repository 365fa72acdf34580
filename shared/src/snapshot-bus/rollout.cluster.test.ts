import { afterAll } from 'vitest';
import { createTestRedisCluster } from '../testing/cluster.js';
import { describeRolloutContract } from './rollout.contract.js';

const redis = await createTestRedisCluster('rollout');

afterAll(() => redis.cleanup());

describeRolloutContract('redis cluster', () => ({ redis: redis.client, prefix: redis.prefix }));
