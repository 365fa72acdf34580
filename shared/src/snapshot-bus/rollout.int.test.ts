import { afterAll } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import { describeRolloutContract } from './rollout.contract.js';

const redis = createTestRedis('rollout');

afterAll(() => redis.cleanup());

describeRolloutContract('redis', () => ({ redis: redis.client, prefix: redis.prefix }));
