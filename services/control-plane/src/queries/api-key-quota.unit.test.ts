import { randomUUID } from 'node:crypto';
import { InMemoryQuotaStore } from '@vantageedge/shared/usage/quota-store';
import { quotaWindows } from '@vantageedge/shared/usage/quota-windows';
import { describe, expect, it } from 'vitest';
import { createApiKeyQuotaReader } from './api-key-quota.js';

const DAY_MS = 86_400_000;

describe("an API key's quota in its GET", () => {
  // Regression test: the GET read the counters of the control plane's own day, so a control plane
  // whose clock disagreed with the counters' across midnight showed a period the gateways no longer
  // (or did not yet) count in: a used-up key read as untouched.
  it("reads the counters of the period the counters' clock is in, not the control plane's", async () => {
    const countersNow = Date.now() + DAY_MS;
    const store = new InMemoryQuotaStore({ now: () => countersNow });
    const [tenantId, apiKeyId] = [randomUUID(), randomUUID()];
    const quota = { requests_per_day: 10 };
    const windows = quotaWindows('', tenantId, { kind: 'api_key', id: apiKeyId }, quota, countersNow);
    for (let i = 0; i < 3; i++) expect((await store.consume(windows)).allowed).toBe(true);

    const usage = await createApiKeyQuotaReader(store, '')(tenantId, apiKeyId, quota);
    expect(usage).toEqual([
      {
        period: 'day',
        limit: 10,
        used: 3,
        remaining: 7,
        resets_at: new Date(windows[0]!.resetsAt).toISOString(),
      },
    ]);
  });
});
