import { randomUUID } from 'node:crypto';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { HEADER_VERSION } from '@vantageedge/shared/snapshot-bus/codec';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import {
  createTestKafka,
  deleteTestTopics,
  uniqueGroupId,
  uniqueTopic,
} from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnapshotPublisher } from './snapshot-publisher.js';
import { saveStates } from './snapshot-state-store.js';

/**
 * Kafka's log compaction keeps each tenant's LAST WRITTEN record, not its highest version, and drops
 * the tombstone after delete.retention.ms. So a tenant's records must reach the topic in version
 * order even while two snapshot projectors run (a deploy's overlap): a stale snapshot written after
 * the tombstone revives a deleted tenant on every replica that starts after compaction, and with it
 * its earlier claim on a host since given to another tenant.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function snapshotOf(tenantId: string, version: bigint): TenantSnapshot {
  return {
    schema_version: 1,
    tenant_id: tenantId,
    version: version.toString(),
    event_time: new Date().toISOString(),
    tenant: {
      id: tenantId,
      name: 'Acme',
      subdomain: `acme-${tenantId.slice(0, 6)}`,
      clerk_org_id: null,
      settings: { rate_limit: null, oidc: null, service_accounts: [], ip_rules: null },
    },
    custom_domains: [],
    users: [],
    origins: [],
    routes: [],
    api_keys: [],
    certificates: [],
  } as unknown as TenantSnapshot;
}

async function save(state: Parameters<typeof saveStates>[1][number]): Promise<void> {
  const client = await db.pool.connect();
  try {
    await saveStates(client, [state]);
  } finally {
    client.release();
  }
}

describe('the order of a tenant’s records on the topic', () => {
  it('never writes an older snapshot after a newer version, even from a second publisher', async () => {
    const shared = createInMemorySnapshotBus();
    const tenantId = randomUUID();
    await save({ status: 'live', snapshot: snapshotOf(tenantId, 5n) });

    // The old projector's send of version 5 is slow (a large tenant's gzip, a Kafka retry)...
    let sendSlowly!: () => void;
    const slow = new Promise<void>((resolve) => {
      sendSlowly = resolve;
    });
    let sending = false;
    const slowBus: SnapshotBus = {
      ...shared,
      async publish(messages) {
        sending = true;
        await slow;
        return shared.publish(messages);
      },
    };
    const old = startSnapshotPublisher({ pool: db.pool, bus: slowBus, tenantPublishBytesPerSecond: 0 });
    await eventually('the old publisher is sending version 5', () => sending);

    // ...meanwhile the tenant is deleted and the new projector publishes at once.
    await save({ status: 'deleted', tenantId, version: 6n, eventTime: new Date().toISOString() });
    const fresh = startSnapshotPublisher({ pool: db.pool, bus: shared, tenantPublishBytesPerSecond: 0 });
    // Give the new publisher time to publish (it may have to wait for the old one, which is the fix).
    await new Promise((resolve) => setTimeout(resolve, 300));
    sendSlowly();
    await old.idle();
    await fresh.idle();
    await eventually('the tombstone is published', () =>
      shared.log.records.some((record) => record.key === tenantId && record.value === null),
    );
    await old.stop();
    await fresh.stop();

    // What compaction keeps of the key: its last written record.
    const lastWritten = shared.log.records.filter((record) => record.key === tenantId).at(-1)!;
    expect({ version: lastWritten.headers[HEADER_VERSION], tombstone: lastWritten.value === null }).toEqual({
      version: '6',
      tombstone: true,
    });
  });
});

/** Every record of a one-partition topic, in the order written: key, version header, tombstone. */
async function topicRecords(
  topic: string,
): Promise<Array<{ key: string; version: string; tombstone: boolean }>> {
  const kafka = createTestKafka({ level: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const [partition] = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const end = BigInt(partition!.high);
  const records: Array<{ key: string; version: string; tombstone: boolean }> = [];
  if (end === 0n) return records;
  const groupId = uniqueGroupId('publish-order');
  const consumer = kafka.consumer({ groupId });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let read = 0n;
  await consumer.run({
    eachMessage: async ({ message }) => {
      records.push({
        key: message.key?.toString('utf8') ?? '',
        version: message.headers?.[HEADER_VERSION]?.toString() ?? '',
        tombstone: message.value === null,
      });
      read = BigInt(message.offset) + 1n;
    },
  });
  await eventually('the whole topic is read', () => read >= end);
  await consumer.disconnect();
  await admin.connect();
  await admin.deleteGroups([groupId]).catch(() => {});
  await admin.disconnect();
  return records;
}

describe('a publisher that loses its PostgreSQL session while it sends (real Kafka)', () => {
  const topic = uniqueTopic('publish-lock-lost');
  const buses: SnapshotBus[] = [];
  const kafkaBus = (): SnapshotBus => {
    const bus = createKafkaSnapshotBus({
      brokers: TEST_INFRA.kafkaBrokers,
      clientId: `ve-test-publish-order-${randomUUID()}`,
      topic,
      partitions: 1,
      replicationFactor: 1,
      maxMessageBytes: 1024 * 1024,
    });
    buses.push(bus);
    return bus;
  };
  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    await deleteTestTopics([topic]);
  });

  it('sends the newest version again after the older one it was sending lands behind it', async () => {
    const tenantId = randomUUID();
    await save({ status: 'live', snapshot: snapshotOf(tenantId, 5n) });

    // The old projector's send of version 5 is slow (a large tenant's gzip, a Kafka retry)...
    const oldBus = kafkaBus();
    let sendSlowly!: () => void;
    const slow = new Promise<void>((resolve) => {
      sendSlowly = resolve;
    });
    let sending = false;
    const old = startSnapshotPublisher({
      pool: db.pool,
      bus: {
        ...oldBus,
        async publish(messages) {
          sending = true;
          await slow;
          return oldBus.publish(messages);
        },
      },
      tenantPublishBytesPerSecond: 0,
      retryDelayMs: 50,
    });
    await eventually('the old publisher is sending version 5', () => sending);

    // ...when its PostgreSQL session ends (a restart, a failover, a proxy's idle timeout): the tenant's
    // publication lock goes with it, while the send goes on.
    const { rows } = await db.pool.query<{ ended: boolean }>(
      `select pg_terminate_backend(pid) as ended from pg_stat_activity
       where datname = current_database() and state = 'idle in transaction'`,
    );
    expect(rows).toEqual([{ ended: true }]);

    // The tenant is deleted, and the new projector publishes the tombstone at once.
    await save({ status: 'deleted', tenantId, version: 6n, eventTime: new Date().toISOString() });
    const fresh = startSnapshotPublisher({ pool: db.pool, bus: kafkaBus(), tenantPublishBytesPerSecond: 0 });
    await fresh.idle();
    expect((await topicRecords(topic)).filter((record) => record.key === tenantId)).toEqual([
      { key: tenantId, version: '6', tombstone: true },
    ]);

    // Version 5 reaches the topic after the tombstone.
    sendSlowly();
    await old.idle();
    await fresh.idle();
    await old.stop();
    await fresh.stop();

    // What compaction keeps of the key, and all a replica starting after it sees: its last written record.
    const lastWritten = (await topicRecords(topic)).filter((record) => record.key === tenantId).at(-1);
    expect(lastWritten).toEqual({ key: tenantId, version: '6', tombstone: true });
  });
});
