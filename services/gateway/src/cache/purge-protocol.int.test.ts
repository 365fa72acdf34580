import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll } from 'vitest';
import { describePurgeProtocol } from './purge-protocol.contract.js';

const redis = createTestRedis('cache-purge-protocol');

afterAll(() => redis.cleanup());

describePurgeProtocol('redis', () => ({
  prefix: redis.prefix,
  client: redis.client,
  async connect(name) {
    const client = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 1_000, name });
    await whenReady(client);
    return client;
  },
}));
