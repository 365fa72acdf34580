import { randomUUID } from 'node:crypto';
import { newEvent, originState } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import type * as codec from '@vantageedge/shared/snapshot-bus/codec';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

const gzipped = vi.hoisted(() => ({ count: 0 }));
vi.mock('@vantageedge/shared/snapshot-bus/codec', async (importOriginal) => {
  const actual = await importOriginal<typeof codec>();
  return {
    ...actual,
    measureSnapshot: async (...args: Parameters<typeof actual.measureSnapshot>) => {
      const size = await actual.measureSnapshot(...args);
      if (size.valueExact && size.jsonBytes > actual.COMPRESS_ABOVE_BYTES) gzipped.count += 1;
      return size;
    },
  };
});

/**
 * Regression test: the snapshot guard stringified and gzipped a tenant's whole snapshot for every
 * command that grew it once its JSON was over the gzip budget, however far under that budget its
 * gzip was (a tenant of 1,000 routes, 13 MB of JSON and 4.3 MB gzipped: ≈ 300 ms of CPU per command,
 * 50–80 ms of it on the event loop every tenant's admin API shares). Here the bus takes 2 MiB (budget
 * ≈ 1.5 MB after gzip) and the tenant has 1.8 MB of JSON that gzips to a few KB.
 */
let cp: ControlPlaneHarness;
let tenantId: string;

beforeAll(async () => {
  cp = await startControlPlane({
    snapshotBudget: {
      maxMessageBytes: 2 * 1024 * 1024,
      maxDecodedBytes: 32 * 1024 * 1024,
      percent: 75,
      // The gzip bound is under test: no tighter bound on its JSON than what gateways inflate.
      maxJsonBytes: 32 * 1024 * 1024,
    },
  });
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'large', subdomain: `large-${randomUUID().slice(0, 8)}` },
  });
  tenantId = json(created)['id'] as string;
  // 90 origins of ten 2,000-character URLs that compress well, straight into the log.
  for (let index = 0; index < 90; index += 1) {
    const targets = Array.from({ length: 10 }, (_, target) => ({
      url: `https://o.example.com/${index}/${target}/${'a'.repeat(1960)}`,
      weight: 1,
    }));
    const origin = { ...originState(tenantId), name: `o${index}`, targets };
    await cp.store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  }
});
afterAll(async () => {
  await cp?.close();
});

describe('what the snapshot guard costs a large tenant', () => {
  it('gzips the whole snapshot only when an estimate from its last gzip does not fit the budget', async () => {
    gzipped.count = 0;
    for (let index = 0; index < 5; index += 1) {
      const response = await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: `new${index}`, url: `https://n${index}.example.com` },
      });
      expect(response.status, JSON.stringify(response.body)).toBe(201);
    }
    expect(gzipped.count).toBe(1);
  });
});
