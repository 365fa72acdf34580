import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import { describeQuotaStoreContract } from './quota-store.contract.js';
import { RedisQuotaStore } from './quota-store.js';
import { quotaWindows } from './quota-windows.js';

/** The quota counters in the real Redis, as every gateway replica and the control plane share them. */
const redis = createTestRedis('quota-store');
const tenantKeys = async (tenantId: string) => redis.client.keys(`${redis.prefix}q:{${tenantId}}:*`);

afterAll(async () => {
  await redis.cleanup();
});

describeQuotaStoreContract('redis', (tenantMaxKeys) => ({
  store: new RedisQuotaStore(redis.client, { tenantMaxKeys }),
  prefix: redis.prefix,
  heldKeys: async (tenantId) => (await tenantKeys(tenantId)).length,
}));

describe('RedisQuotaStore', () => {
  const tenantMaxKeys = 5;
  const store = new RedisQuotaStore(redis.client, { tenantMaxKeys });

  it('gives every counter and ledger an expiry (volatile-lru may evict them, nothing is kept forever)', async () => {
    const tenantId = randomUUID();
    const quota = { requests_per_day: 3, requests_per_month: 100 };
    for (let i = 0; i < tenantMaxKeys + 2; i++)
      await store.consume(
        quotaWindows(redis.prefix, tenantId, { kind: 'api_key', id: randomUUID() }, quota, Date.now()),
      );
    for (const key of await tenantKeys(tenantId)) expect(await redis.client.pttl(key)).toBeGreaterThan(0);
  });
});
