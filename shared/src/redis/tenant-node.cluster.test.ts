import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedisCluster, masterAddresses, masterOf } from '../testing/cluster.js';
import { tenantNodeLocator } from './tenant-node.js';

const redis = await createTestRedisCluster('tenant-node');

afterAll(async () => {
  await redis.cleanup();
});

describe('the node of a tenant on a Redis Cluster', () => {
  it('is the master serving the slot of every key with the tenant’s hash tag', async () => {
    const nodeOf = tenantNodeLocator(redis.client);
    const masters = await masterAddresses(redis.client);
    const seen = new Set<string>();
    // Until tenants on every master were asked about (a handful of random ids: a third on each).
    for (let i = 0; i < 200 && seen.size < masters.length; i++) {
      const tenantId = randomUUID();
      const master = await masterOf(redis.client, `${redis.prefix}rl:{${tenantId}}:route`);
      expect(nodeOf(tenantId), tenantId).toBe(master);
      // Asked again (its slot remembered), the same answer.
      expect(nodeOf(tenantId), tenantId).toBe(master);
      seen.add(master);
    }
    expect([...seen].sort()).toEqual(masters);
  });
});
