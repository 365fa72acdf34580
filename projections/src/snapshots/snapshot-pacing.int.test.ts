import { randomUUID } from 'node:crypto';
import { streamName, type TenantState } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import { HEADER_VERSION } from '@vantageedge/shared/snapshot-bus/codec';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnapshotProjector } from './snapshot-projector.js';
import { newEvent, tenantCreated } from './testing.js';

/**
 * Every version of a tenant's snapshot costs every gateway replica its decode (hundreds of milliseconds
 * of blocked event loop near the snapshot budget), and a tenant admin may send 600 commands a minute: the
 * publisher paces each tenant in proportion to its snapshot's size, sending only the newest version when
 * its time comes, while the other tenants keep publishing.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

describe('snapshot publication pacing', () => {
  it('coalesces a tenant’s quick changes into one publication after its pacing window, without delaying another tenant', async () => {
    const store = new InMemoryEventStore();
    const bus = createInMemorySnapshotBus();
    const registry = new Registry();
    const name = `t_${randomUUID()}`;
    // A new tenant is some 430 bytes of JSON: about 9 s between two of its publications.
    const projector = startSnapshotProjector({
      store,
      pool: db.pool,
      bus,
      name,
      registry,
      tenantPublishBytesPerSecond: 50,
    });
    const versionsOf = (tenantId: string) =>
      bus.log.records
        .filter((record) => record.key === tenantId)
        .map((r) => BigInt(r.headers[HEADER_VERSION]!));

    const churner = randomUUID();
    const creation = tenantCreated(churner);
    const tenant = creation.data as TenantState;
    const created = await store.appendToStream(streamName.tenant(churner), [creation]);
    await eventually('created', () => versionsOf(churner).includes(created.position));

    // Ten changes, each folded (committed) before the next.
    let newest = created.position;
    for (let index = 0; index < 10; index += 1) {
      const renamed = newEvent('TenantUpdated', {
        ...tenant,
        name: `Acme ${index}`,
        changed_fields: ['name'],
      });
      newest = (await store.appendToStream(streamName.tenant(churner), [renamed])).position;
      await eventually(`change ${index} folded`, () => projector.checkpoint() >= newest);
    }

    const other = randomUUID();
    const otherWrite = await store.appendToStream(streamName.tenant(other), [tenantCreated(other)]);
    await eventually('the other tenant published', () => versionsOf(other).includes(otherWrite.position));
    // Still inside the churner's window: none of its ten changes went out yet.
    expect(versionsOf(churner)).toEqual([created.position]);

    await eventually('the newest version published', () => versionsOf(churner).includes(newest));
    expect(versionsOf(churner)).toEqual([created.position, newest]);
    // Counted once the bus has acknowledged the send and the publication is recorded, just after the
    // record is in the log.
    await expect
      .poll(() => registry.metrics(), { timeout: 5_000 })
      .toMatch(/^vantageedge_snapshot_pacing_delay_seconds_count 1$/m);
    await projector.stop();
  }, 30_000);

  it('publishes a deleted tenant’s tombstone at once, however long its pacing window', async () => {
    const store = new InMemoryEventStore();
    const bus = createInMemorySnapshotBus();
    const name = `t_${randomUUID()}`;
    // About 1,500 s between two publications of a tenant.
    const projector = startSnapshotProjector({
      store,
      pool: db.pool,
      bus,
      name,
      tenantPublishBytesPerSecond: 1,
    });
    const tenantId = randomUUID();
    const creation = tenantCreated(tenantId);
    const tenant = creation.data as TenantState;
    const created = await store.appendToStream(streamName.tenant(tenantId), [creation]);
    await eventually('created', () => bus.log.records.some((record) => record.key === tenantId));
    const renamed = await store.appendToStream(streamName.tenant(tenantId), [
      newEvent('TenantUpdated', { ...tenant, name: 'Renamed', changed_fields: ['name'] }),
    ]);
    await eventually('rename folded', () => projector.checkpoint() >= renamed.position);
    const deleted = await store.appendToStream(streamName.tenant(tenantId), [
      newEvent('TenantDeleted', { tenant_id: tenantId }),
    ]);
    await eventually('tombstone published', () =>
      bus.log.records.some((record) => record.key === tenantId && record.value === null),
    );
    expect(
      bus.log.records.filter((record) => record.key === tenantId).map((r) => r.headers[HEADER_VERSION]),
    ).toEqual([String(created.position), String(deleted.position)]);
    await projector.stop();
  });
});
