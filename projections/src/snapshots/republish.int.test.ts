import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestKafka, deleteTopicUntilGone, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countUnpublishedSnapshots,
  requestSnapshotRepublish,
  requestSnapshotRepublishOnceSent,
  waitForSnapshotsPublished,
} from './republish.js';
import { type SnapshotProjector, startSnapshotProjector } from './snapshot-projector.js';
import { onePartitionTestBus, tenantCreated } from './testing.js';

/**
 * Regression test for a lost snapshot topic: when Kafka's data is gone, gateways start with no tenants
 * because nothing published the acknowledged snapshots again. Republishing queues every tenant's
 * snapshot from snapshot_state, and the running projector puts them all back on the topic.
 */
const topic = uniqueTopic('republish');
const kafka = createTestKafka({ level: logLevel.NOTHING });
const buses: SnapshotBus[] = [];
let db: TestDatabase;
let projector: SnapshotProjector | undefined;

function kafkaBus(): SnapshotBus {
  const bus = onePartitionTestBus(topic, 'republish');
  buses.push(bus);
  return bus;
}

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await projector?.stop();
  await Promise.all(buses.map((bus) => bus.close()));
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic] }).catch(() => {});
  await admin.disconnect();
  await db?.drop();
});

describe('republishing the snapshot topic from snapshot_state', () => {
  it('puts every tenant back on a topic that was deleted, through the running projector', async () => {
    const store = new InMemoryEventStore();
    projector = startSnapshotProjector({
      store,
      pool: db.pool,
      bus: kafkaBus(),
      name: `t_${randomUUID()}`,
      retryDelayMs: 50,
      publishPollMs: 200,
    });
    const tenants = [randomUUID(), randomUUID()];
    const versions = new Map<string, bigint>();
    for (const tenantId of tenants) {
      const written = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
      versions.set(tenantId, written.position);
    }
    expect(await waitForSnapshotsPublished(db.pool, { timeoutMs: 30_000, pollMs: 100 })).toBe(true);

    // The topic is lost (broker data wiped or topic deleted).
    await deleteTopicUntilGone(topic);

    expect(await requestSnapshotRepublish(db.pool)).toEqual({ tenants: 2 });
    expect(await countUnpublishedSnapshots(db.pool)).toBe(2);
    expect(await waitForSnapshotsPublished(db.pool, { timeoutMs: 60_000, pollMs: 200 })).toBe(true);

    // A gateway starting now reads every tenant's newest snapshot from the rebuilt topic.
    const reader = await recordSubscription(kafkaBus());
    await eventually(
      'every tenant on the rebuilt topic',
      () => tenants.every((tenantId) => reader.versionsOf(tenantId).includes(versions.get(tenantId)!)),
      60_000,
    );
    await reader.subscription.close();
  });

  it('reports nothing published in time when no projector is running', async () => {
    await projector?.stop();
    projector = undefined;
    await requestSnapshotRepublish(db.pool);
    expect(await waitForSnapshotsPublished(db.pool, { timeoutMs: 300, pollMs: 100 })).toBe(false);
  });
});

describe('republishing again while the snapshot topic deletes old records', () => {
  it('queues nothing while tenants queued last time are still waiting to be published', async () => {
    const own = await createTestDatabase();
    try {
      const tenants = [randomUUID(), randomUUID()];
      for (const [index, tenantId] of tenants.entries()) {
        await own.pool.query(
          `insert into snapshot_state (tenant_id, version, status, snapshot, event_time, published_version)
           values ($1, $2, 'live', '{}', now(), $2)`,
          [tenantId, index + 1],
        );
      }
      expect(await requestSnapshotRepublishOnceSent(own.pool)).toEqual({ tenants: 2 });

      // One of them is sent again, the other still waits: queuing the first again would put it back
      // before the second (the queue goes by version).
      await own.pool.query('update snapshot_state set published_version = version where tenant_id = $1', [
        tenants[0],
      ]);
      expect(await requestSnapshotRepublishOnceSent(own.pool)).toBeUndefined();
      expect(await countUnpublishedSnapshots(own.pool)).toBe(1);

      // A tenant refused for good does not hold the next republish back.
      await own.pool.query('update snapshot_state set failed_version = version where tenant_id = $1', [
        tenants[1],
      ]);
      expect(await requestSnapshotRepublishOnceSent(own.pool)).toEqual({ tenants: 2 });
      expect(await countUnpublishedSnapshots(own.pool)).toBe(2);
    } finally {
      await own.drop();
    }
  });
});
