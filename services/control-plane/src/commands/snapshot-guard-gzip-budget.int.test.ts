import { randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { newEvent, originState } from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import type * as codec from '@vantageedge/shared/snapshot-bus/codec';
import { snapshotJsonBytes, snapshotLimits } from '@vantageedge/shared/snapshot-bus/codec';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from '../config-history/config-read-budget.js';
import { tenantFoldAt } from '../config-history/tenant-folds.js';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { GZIP_WINDOW_SLACK } from './snapshot-size-estimates.js';

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
 * Regression test: a growing command of a tenant passes on an estimate of its snapshot's gzip only
 * when the estimate fits; a tenant sitting right at the budget (its gzip within two edits' slack of it)
 * never fits the estimate, so every one of its growing commands gzipped the whole snapshot (≈ 330 ms
 * of CPU for 13 MB of JSON) — 600 commands a minute of one tenant kept a control-plane process busy.
 * Here the bus takes 512 KiB (budget ≈ 383 KiB after gzip), the tenant's snapshot is random (it does
 * not compress) and ~45 KB under the budget, and its config read budget is five snapshots a minute
 * (the clock stands still): five exact gzips, then 429 until the bucket refills.
 */
const BUS_BYTES = 512 * 1024;
const limits = snapshotLimits(BUS_BYTES, 32 * 1024 * 1024, 0.75);
let cp: ControlPlaneHarness;
let tenantId: string;
let snapshotBytes = 0;

async function currentSnapshot() {
  const source = { store: cp.store, pool: cp.db.pool };
  const { state } = await tenantFoldAt(source, tenantId, await cp.store.headPosition());
  if (state?.status !== 'live') throw new Error('tenant not live');
  return state.snapshot;
}

beforeAll(async () => {
  cp = await startControlPlane({
    snapshotBudget: {
      maxMessageBytes: BUS_BYTES,
      maxDecodedBytes: 32 * 1024 * 1024,
      percent: 75,
      // The gzip bound is under test: no tighter bound on its JSON than what gateways inflate.
      maxJsonBytes: 32 * 1024 * 1024,
    },
  });
  const created = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'at-budget', subdomain: `at-budget-${randomUUID().slice(0, 8)}` },
  });
  tenantId = json(created)['id'] as string;
  // Origins of incompressible 8 KB, straight into the log, until the gzip is ~45 KB under the budget.
  for (let index = 0; ; index += 1) {
    const snapshot = await currentSnapshot();
    const gzip = gzipSync(JSON.stringify(snapshot)).length;
    if (gzip >= limits.maxValueBytes - 45_000) {
      // Within two edits' slack of the budget: no estimate of a growing command fits.
      expect(limits.maxValueBytes - gzip).toBeLessThan(2 * GZIP_WINDOW_SLACK - 10_000);
      snapshotBytes = snapshotJsonBytes(snapshot);
      break;
    }
    const targets = Array.from({ length: 8 }, (_, target) => ({
      url: `https://o.example.com/${index}/${target}/${randomBytes(750).toString('base64url')}`,
      weight: 1,
    }));
    const origin = { ...originState(tenantId), name: `o${index}`, targets };
    await cp.store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  }
  useConfigReadBudget(cp.store, createConfigReadBudget({ bytesPerMinute: 5 * snapshotBytes, now: () => 0 }));
}, 120_000);
afterAll(async () => {
  await cp?.close();
});

describe('the snapshot guard of a tenant at its budget', () => {
  it('charges each exact gzip to the tenant’s config read budget: past it 429 naming the limit, appending nothing', async () => {
    gzipped.count = 0;
    const statuses: number[] = [];
    let limited: { code: string; details: Array<{ field: string }> } | undefined;
    let createdId: string | undefined;
    for (let index = 0; index < 20; index += 1) {
      const response = await cp.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenantId, name: `new${index}`, url: `https://n${index}.example.com` },
      });
      statuses.push(response.status);
      if (response.status === 201) createdId ??= json(response)['id'] as string;
      if (response.status === 429) {
        limited ??= json(response)['error'] as typeof limited;
        expect(Number(response.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
    }
    expect(gzipped.count).toBe(5);
    expect(statuses).toEqual([...Array(5).fill(201), ...Array(15).fill(429)]);
    expect(limited?.code).toBe('admin_rate_limited');
    expect(limited?.details.map((detail) => detail.field)).toEqual(['tenant_config_read_bytes_per_minute']);
    const names = (await currentSnapshot()).origins.map((origin) => origin.name);
    expect(names.filter((name) => name.startsWith('new'))).toHaveLength(5);
    // Deletions are never measured: the tenant can still shrink while its bucket is in debt.
    expect((await cp.request('DELETE', `/api/v1/origins/${createdId}`)).status).toBe(204);
  });
});
