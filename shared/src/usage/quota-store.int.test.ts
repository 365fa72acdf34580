import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestRedis } from '../testing/redis.js';
import { RedisQuotaStore } from './quota-store.js';
import { type QuotaWindow, quotaWindows } from './quota-windows.js';

/** The quota counters in the real Redis, as every gateway replica and the control plane share them. */
describe('RedisQuotaStore', () => {
  const redis = createTestRedis('quota-store');
  const tenantMaxKeys = 5;
  const store = new RedisQuotaStore(redis.client, { tenantMaxKeys });
  const quota = { requests_per_day: 3, requests_per_month: 100 };
  const keyWindows = (tenantId: string, apiKeyId: string, now = Date.now(), policy = quota): QuotaWindow[] =>
    quotaWindows(redis.prefix, tenantId, { kind: 'api_key', id: apiKeyId }, policy, now);
  const tenantKeys = async (tenantId: string) => redis.client.keys(`${redis.prefix}q:{${tenantId}}:*`);

  afterAll(async () => {
    await redis.cleanup();
  });

  // Regression test: every API key that made one request left a day and a month counter for a day past
  // its period, so a tenant admin creating, using and revoking keys (300 a minute) filled the shared
  // Redis with millions of counters, pushing other tenants' keys out at maxmemory.
  it("keeps a tenant's key counters bounded however many keys it churns through", async () => {
    const tenantId = randomUUID();
    const churned = 40;
    const generous = { requests_per_day: 1000, requests_per_month: 1000 };
    for (let i = 0; i < churned; i++) {
      const decision = await store.consume(keyWindows(tenantId, randomUUID(), Date.now(), generous));
      expect(decision.allowed).toBe(true);
    }
    // Per period: at most tenantMaxKeys keys' counters, one shared overflow counter and the ledger.
    expect((await tenantKeys(tenantId)).length).toBeLessThanOrEqual(2 * (tenantMaxKeys + 2));
  });

  it('still enforces a key past the bound: its requests count on the overflow counter, never unmetered', async () => {
    const tenantId = randomUUID();
    for (let i = 0; i < tenantMaxKeys; i++) await store.consume(keyWindows(tenantId, randomUUID()));
    const late = randomUUID();
    const decisions = [];
    for (let i = 0; i < 4; i++) decisions.push(await store.consume(keyWindows(tenantId, late)));
    expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
    expect(await store.read(keyWindows(tenantId, late))).toEqual([3, 3]);
  });

  it("never resets a counted key's count, however many other keys come and go", async () => {
    const tenantId = randomUUID();
    const live = randomUUID();
    await store.consume(keyWindows(tenantId, live));
    await store.consume(keyWindows(tenantId, live));
    for (let i = 0; i < 3 * tenantMaxKeys; i++) await store.consume(keyWindows(tenantId, randomUUID()));
    expect(await store.read(keyWindows(tenantId, live))).toEqual([2, 2]);
    const third = await store.consume(keyWindows(tenantId, live));
    const fourth = await store.consume(keyWindows(tenantId, live));
    expect([third.allowed, fourth.allowed]).toEqual([true, false]);
  });

  it('counts each key on its own below the bound, and a new period starts at zero', async () => {
    const tenantId = randomUUID();
    const [a, b] = [randomUUID(), randomUUID()];
    await store.consume(keyWindows(tenantId, a));
    await store.consume(keyWindows(tenantId, a));
    await store.consume(keyWindows(tenantId, b));
    expect(await store.read(keyWindows(tenantId, a))).toEqual([2, 2]);
    expect(await store.read(keyWindows(tenantId, b))).toEqual([1, 1]);
    const tomorrow = Date.now() + 86_400_000;
    expect((await store.read(keyWindows(tenantId, a, tomorrow)))[0]).toBe(0);
  });

  it('gives every counter and ledger an expiry (volatile-lru may evict them, nothing is kept forever)', async () => {
    const tenantId = randomUUID();
    for (let i = 0; i < tenantMaxKeys + 2; i++) await store.consume(keyWindows(tenantId, randomUUID()));
    for (const key of await tenantKeys(tenantId)) expect(await redis.client.pttl(key)).toBeGreaterThan(0);
  });
});
