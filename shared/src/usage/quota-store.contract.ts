import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { QuotaStore } from './quota-store.js';
import { type QuotaWindow, quotaWindows } from './quota-windows.js';

/** One behavioural suite for every QuotaStore (Redis and in-memory). */
export interface QuotaStoreUnderTest {
  store: QuotaStore;
  /** Prepended to every counter key (GATEWAY_REDIS_KEY_PREFIX). */
  prefix: string;
  /** How many counters and ledgers the store holds for the tenant (its footprint). */
  heldKeys(tenantId: string): Promise<number>;
}

const DAY_MS = 86_400_000;

/** `setup` gets the store's GATEWAY_QUOTA_TENANT_MAX_KEYS. */
export function describeQuotaStoreContract(
  name: string,
  setup: (tenantMaxKeys: number) => QuotaStoreUnderTest,
): void {
  describe(`QuotaStore contract: ${name}`, () => {
    const tenantMaxKeys = 5;
    const { store, prefix, heldKeys } = setup(tenantMaxKeys);
    const quota = { requests_per_day: 3, requests_per_month: 100 };
    const keyWindows = (
      tenantId: string,
      apiKeyId: string,
      now = Date.now(),
      policy = quota,
    ): QuotaWindow[] => quotaWindows(prefix, tenantId, { kind: 'api_key', id: apiKeyId }, policy, now);

    // Regression test: every API key that made one request left a day and a month counter for a day
    // past its period, so a tenant admin creating, using and revoking keys (300 a minute) filled the
    // store with millions of counters.
    it("keeps a tenant's key counters bounded however many keys it churns through", async () => {
      const tenantId = randomUUID();
      const generous = { requests_per_day: 1000, requests_per_month: 1000 };
      for (let i = 0; i < 40; i++) {
        const decision = await store.consume(keyWindows(tenantId, randomUUID(), Date.now(), generous));
        expect(decision.allowed).toBe(true);
      }
      // Per period: at most tenantMaxKeys keys' counters, one shared overflow counter and the ledger.
      expect(await heldKeys(tenantId)).toBeLessThanOrEqual(2 * (tenantMaxKeys + 2));
    });

    it('still enforces keys past the bound: they share the overflow counter, never unmetered', async () => {
      const tenantId = randomUUID();
      for (let i = 0; i < tenantMaxKeys; i++) await store.consume(keyWindows(tenantId, randomUUID()));
      const [late, later] = [randomUUID(), randomUUID()];
      const decisions = [];
      for (let i = 0; i < 2; i++) decisions.push(await store.consume(keyWindows(tenantId, late)));
      for (let i = 0; i < 2; i++) decisions.push(await store.consume(keyWindows(tenantId, later)));
      expect(decisions.map((decision) => decision.allowed)).toEqual([true, true, true, false]);
      expect(await store.read(keyWindows(tenantId, late))).toEqual([3, 3]);
      expect(await store.read(keyWindows(tenantId, later))).toEqual([3, 3]);
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
      const tomorrow = Date.now() + DAY_MS;
      expect((await store.read(keyWindows(tenantId, a, tomorrow)))[0]).toBe(0);
    });

    // Regression test: the refusal named the first full window (the day's), so a client told to retry
    // at midnight was refused again then by the month's, full too.
    it('refuses naming the full window that admits last: the month when the day is full too', async () => {
      const tenantId = randomUUID();
      const apiKeyId = randomUUID();
      const tight = { requests_per_day: 2, requests_per_month: 2 };
      const windows = keyWindows(tenantId, apiKeyId, Date.now(), tight);
      await store.consume(windows);
      await store.consume(windows);
      const refused = await store.consume(windows);
      // On a month's last day the day and the month end together: the first of them is named.
      const monthEndsLater = windows[1]!.resetsAt > windows[0]!.resetsAt;
      expect(refused).toMatchObject({ allowed: false, index: monthEndsLater ? 1 : 0, used: 2 });
      expect(windows[1]?.period).toBe('month');
    });

    it("counts nothing in windows of a period the store's clock is not in, and answers its time", async () => {
      const tenantId = randomUUID();
      for (const at of [Date.now() - 70 * DAY_MS, Date.now() + DAY_MS]) {
        const before = Date.now();
        const decision = await store.consume(keyWindows(tenantId, randomUUID(), at));
        expect(decision.allowed).toBeNull();
        expect(decision.storeNow).toBeGreaterThanOrEqual(before - 60_000);
        expect(decision.storeNow).toBeLessThanOrEqual(Date.now() + 60_000);
      }
      expect(await heldKeys(tenantId)).toBe(0);
    });
  });
}
