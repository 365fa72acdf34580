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
