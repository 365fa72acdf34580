import { randomUUID } from 'node:crypto';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LARGE_SNAPSHOT_BYTES } from './snapshot-publisher.js';
import { loadPending, saveStates } from './snapshot-state-store.js';

/**
 * Which lane publishes a snapshot is decided by its size as JSON (what the publisher stringifies and
 * gzips), not as PostgreSQL stores it: jsonb compresses a tenant's repeated route policies some 40×, so
 * a snapshot of 10 MB of JSON is stored in under 256 KiB and went out with the small ones, 200 to a
 * batch (each loaded, stringified and gzipped together: seconds and gigabytes for every other tenant).
 */
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});

afterAll(async () => {
  await database.drop();
});

function snapshotOf(tenantId: string, jsonMegabytes: number): TenantSnapshot {
  const value = 'x'.repeat(2000);
  const routes = Array.from({ length: jsonMegabytes * 50 }, (_, index) => ({
    id: randomUUID(),
    path_pattern: `/r${index}`,
    headers: Array.from({ length: 10 }, (_, header) => ({ name: `h${header}`, value })),
  }));
  return {
    tenant_id: tenantId,
    version: '1',
    event_time: new Date().toISOString(),
    routes,
  } as unknown as TenantSnapshot;
}

describe('the snapshot publisher’s lanes', () => {
  it('publishes a snapshot of 10 MB of JSON in the large lane, however well PostgreSQL compresses it', async () => {
    const large = randomUUID();
    const small = randomUUID();
    const client = await database.pool.connect();
    try {
      await saveStates(client, [
        { status: 'live', snapshot: snapshotOf(large, 10) },
        { status: 'live', snapshot: { ...snapshotOf(small, 0), version: '2' } },
      ]);
    } finally {
      client.release();
    }
    const lane = async (isLarge: boolean) =>
      (
        await loadPending(database.pool, {
          limit: 200,
          largeBytes: LARGE_SNAPSHOT_BYTES,
          large: isLarge,
          exclude: [],
        })
      ).map((entry) => entry.tenantId);
    expect(await lane(false)).toEqual([small]);
    expect(await lane(true)).toEqual([large]);
  });
});
