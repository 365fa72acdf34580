import { createClusterClient, createTestRedisCluster } from '@vantageedge/shared/testing/cluster';
import { afterAll } from 'vitest';
import { describePurgeProtocol } from './purge-protocol.contract.js';

const redis = await createTestRedisCluster('cache-purge-protocol');

afterAll(() => redis.cleanup());

describePurgeProtocol('redis cluster', () => ({
  prefix: redis.prefix,
  client: redis.client,
  connect: (name) => createClusterClient(name),
}));
