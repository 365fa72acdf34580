import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { describeQuotaStoreContract } from './quota-store.contract.js';
import { InMemoryQuotaStore } from './quota-store.js';
import { quotaWindows } from './quota-windows.js';

describeQuotaStoreContract('in-memory', (tenantMaxKeys) => {
  const store = new InMemoryQuotaStore({ tenantMaxKeys });
  return { store, prefix: '', heldKeys: async (tenantId) => store.heldKeys(tenantId) };
});

describe('InMemoryQuotaStore', () => {
  // Regression test: counters of past periods were never dropped, so `make dev` grew for ever.
  it('drops counters and ledgers once their period is over by a day, as Redis expires them', async () => {
    let now = Date.UTC(2026, 0, 15, 12);
    const store = new InMemoryQuotaStore({ now: () => now });
    const [tenantId, other] = [randomUUID(), randomUUID()];
    const quota = { requests_per_day: 10, requests_per_month: 100 };
    const windows = (tenant: string) =>
      quotaWindows('', tenant, { kind: 'api_key', id: randomUUID() }, quota, now);
    await store.consume(windows(tenantId));
    await store.consume(quotaWindows('', tenantId, { kind: 'tenant' }, quota, now));
    expect(store.heldKeys(tenantId)).toBe(6);
    now = Date.UTC(2026, 0, 17, 0, 0, 1); // the day's counters expired, the month's not
    await store.consume(windows(other));
    expect(store.heldKeys(tenantId)).toBe(3);
    now = Date.UTC(2026, 1, 2, 0, 0, 1);
    await store.consume(windows(other));
    expect(store.heldKeys(tenantId)).toBe(0);
  });
});
