import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import type { StructuredLogger } from '@vantageedge/shared/observability/logger';
import { HEADER_VERSION } from '@vantageedge/shared/snapshot-bus/codec';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import {
  createTestKafka,
  deleteTestTopics,
  deleteTopicUntilGone,
  uniqueTopic,
} from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { logLevel } from 'kafkajs';
import { Registry } from 'prom-client';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type SnapshotProjector, startSnapshotProjector } from './snapshot-projector.js';
import {
  apiKeyIssued,
  onePartitionTestBus,
  snapshotSettled,
  tenantCreated,
  topicRecords,
} from './testing.js';

/**
 * The snapshot projector compares the topic with its store when it starts: a store restored from an
 * older backup (the topic holds newer versions than it) stops it publishing, since gateways would drop
 * every change made after the restore as stale; a topic lost while snapshot_state says every tenant is
 * published is rebuilt from snapshot_state without anyone running `make republish-snapshots`.
 */
const topics: string[] = [];
const databases: TestDatabase[] = [];
const buses: SnapshotBus[] = [];
const projectors: SnapshotProjector[] = [];

function kafkaBus(topic: string): SnapshotBus {
  const bus = onePartitionTestBus(topic, 'topic-check');
  buses.push(bus);
  return bus;
}

async function database(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

function recordingLogger(): StructuredLogger & { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  return {
    errors,
    warnings,
    info() {},
    warn: (message) => warnings.push(message),
    error: (message) => errors.push(message),
  };
}

/** `count` tenants created in `store`: each one's id and the position of its TenantCreated. */
async function createTenants(store: InMemoryEventStore, count: number): Promise<Map<string, bigint>> {
  const versions = new Map<string, bigint>();
  for (let tenant = 0; tenant < count; tenant += 1) {
    const tenantId = randomUUID();
    const written = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    versions.set(tenantId, written.position);
  }
  return versions;
}

/** Until the projector has published each tenant at its version. */
async function everySettled(db: TestDatabase, versions: ReadonlyMap<string, bigint>): Promise<void> {
  for (const [tenantId, version] of versions) await snapshotSettled(db.pool, tenantId, version.toString());
}

/** Until a reader of `topic` from its start (a gateway replica starting now) has every tenant at its version. */
async function everyTenantOnTopic(
  topic: string,
  versions: ReadonlyMap<string, bigint>,
  timeoutMs: number,
): Promise<void> {
  const reader = await recordSubscription(kafkaBus(topic));
  await eventually(
    'every tenant on the rebuilt topic',
    () => [...versions].every(([tenantId, version]) => reader.versionsOf(tenantId).includes(version)),
    timeoutMs,
  );
  await reader.subscription.close();
}

function projector(options: {
  store: InMemoryEventStore;
  db: TestDatabase;
  topic: string;
  bus?: SnapshotBus;
  logger?: StructuredLogger;
  registry?: Registry;
  batchSize?: number;
  topicCheckWaitMs?: number;
  topicWatchMs?: number;
}): SnapshotProjector {
  const started = startSnapshotProjector({
    store: options.store,
    pool: options.db.pool,
    bus: options.bus ?? kafkaBus(options.topic),
    topicCheckWaitMs: options.topicCheckWaitMs,
    topicWatchMs: options.topicWatchMs,
    logger: options.logger,
    registry: options.registry,
    batchSize: options.batchSize,
    retryDelayMs: 50,
    publishPollMs: 200,
  });
  projectors.push(started);
  return started;
}

async function stopProjectors(): Promise<void> {
  await Promise.all(projectors.splice(0).map((running) => running.stop()));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sets `entries` on the topic, as `kafka-configs.sh --alter` does (kafkajs replaces the topic's overrides). */
async function setTopicConfig(topic: string, entries: Array<{ name: string; value: string }>): Promise<void> {
  const admin = createTestKafka({ level: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: 2, name: topic, configEntries: entries }],
    });
  } finally {
    await admin.disconnect();
  }
}

async function gaugeValue(registry: Registry, name: string): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((entry) => entry.name === name);
  return metric?.values[0]?.value;
}

afterEach(stopProjectors);

afterAll(async () => {
  await stopProjectors();
  await Promise.all(buses.map((bus) => bus.close()));
  await deleteTestTopics(topics).catch(() => {});
  await Promise.all(databases.map((db) => db.drop()));
});

describe('the snapshot projector compares the snapshot topic with its store at start', () => {
  it('refuses to publish over the topic when the store was restored from an older backup', async () => {
    const topic = uniqueTopic('topic-check-restore');
    topics.push(topic);
    const tenantId = randomUUID();
    const stream = streamName.tenant(tenantId);

    // Before the incident: the tenant, then three API keys, all on the topic.
    const before = new InMemoryEventStore();
    const beforeDb = await database();
    const backup = [tenantCreated(tenantId)];
    await before.appendToStream(stream, backup);
    let last = '';
    for (let key = 0; key < 3; key += 1) {
      last = (await before.appendToStream(stream, [apiKeyIssued(tenantId)])).position.toString();
    }
    projector({ store: before, db: beforeDb, topic });
    await snapshotSettled(beforeDb.pool, tenantId, last);
    await stopProjectors();
    const newestBefore = BigInt(last);

    // The database is restored from a backup taken after the tenant's creation only, and a change is
    // made: it gets a position the lost events had, below the version the topic (and every gateway) holds.
    const restored = new InMemoryEventStore();
    const restoredDb = await database();
    await restored.appendToStream(stream, backup);
    const change = await restored.appendToStream(stream, [apiKeyIssued(tenantId)]);
    expect(change.position).toBeLessThan(newestBefore);

    const logger = recordingLogger();
    const registry = new Registry();
    const running = projector({ store: restored, db: restoredDb, topic, logger, registry });

    // The projector still folds, but never puts the restored, lower version after the newer one.
    await eventually('the change is folded', () => running.checkpoint() >= change.position, 30_000);
    await running.idle();
    const versions = (await topicRecords(topic))
      .filter((record) => record.key === tenantId)
      .map((record) => BigInt(record.headers[HEADER_VERSION] ?? '0'));
    expect(versions).not.toContain(change.position);
    expect(versions.at(-1)).toBe(newestBefore);

    // And says so: an error naming the runbook, and the metric the alert reads.
    expect(logger.errors.join('\n')).toMatch(/restored from an older backup/);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_store_behind_topic')).toBe(1);
  }, 120_000);

  it('publishes every tenant again on its own when the topic was lost', async () => {
    const topic = uniqueTopic('topic-check-lost');
    topics.push(topic);
    const store = new InMemoryEventStore();
    const db = await database();
    const versions = await createTenants(store, 2);
    projector({ store, db, topic });
    await everySettled(db, versions);
    await stopProjectors();

    await deleteTopicUntilGone(topic);

    const logger = recordingLogger();
    const registry = new Registry();
    projector({ store, db, topic, logger, registry });
    // A gateway starting now reads every tenant from the rebuilt topic, with no republish run by hand.
    await everyTenantOnTopic(topic, versions, 60_000);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_store_behind_topic')).toBe(0);
    expect(logger.errors).toEqual([]);
  }, 120_000);

  it('publishes every tenant again on its own when the topic is lost while it runs', async () => {
    const topic = uniqueTopic('topic-check-lost-running');
    topics.push(topic);
    const store = new InMemoryEventStore();
    const db = await database();
    const versions = await createTenants(store, 2);
    const logger = recordingLogger();
    projector({ store, db, topic, logger, topicWatchMs: 200 });
    await everySettled(db, versions);

    // The topic is deleted under the running projector; a gateway replica starting meanwhile creates it
    // again, empty, and must come to serve every tenant without an operator's republish or restart.
    await deleteTopicUntilGone(topic);
    await everyTenantOnTopic(topic, versions, 30_000);
    expect(logger.warnings.join('\n')).toMatch(/snapshot topic lost/);
  }, 120_000);

  it('reports a topic set to delete old records while it runs, and publishes every tenant again', async () => {
    const topic = uniqueTopic('topic-check-retention-running');
    topics.push(topic);
    const store = new InMemoryEventStore();
    const db = await database();
    const versions = await createTenants(store, 2);
    const logger = recordingLogger();
    const registry = new Registry();
    projector({ store, db, topic, logger, registry, topicWatchMs: 200 });
    await everySettled(db, versions);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_topic_retention_unsafe')).toBe(0);

    // An operator switches the running topic to compact,delete: a tenant unchanged for an hour would go.
    await setTopicConfig(topic, [
      { name: 'cleanup.policy', value: 'compact,delete' },
      { name: 'retention.ms', value: '3600000' },
    ]);
    await eventually('the switch reported', () =>
      logger.errors.some((line) => /may delete tenants/.test(line)),
    );
    expect(await gaugeValue(registry, 'vantageedge_snapshot_topic_retention_unsafe')).toBe(1);
    // Every tenant was published again: the topic holds a second record of each.
    const publishedTwice = async () => {
      const keys = (await topicRecords(topic)).map((record) => record.key);
      return [...versions.keys()].every((tenantId) => keys.filter((key) => key === tenantId).length >= 2);
    };
    for (let attempt = 0; attempt < 50 && !(await publishedTwice()); attempt++) await sleep(200);
    expect(await publishedTwice()).toBe(true);

    await setTopicConfig(topic, [{ name: 'cleanup.policy', value: 'compact' }]);
    for (let attempt = 0; attempt < 50; attempt++) {
      if ((await gaugeValue(registry, 'vantageedge_snapshot_topic_retention_unsafe')) === 0) break;
      await sleep(100);
    }
    expect(await gaugeValue(registry, 'vantageedge_snapshot_topic_retention_unsafe')).toBe(0);
  }, 120_000);

  it('says so when the topic holds tenants of another deployment', async () => {
    const topic = uniqueTopic('topic-check-foreign');
    topics.push(topic);

    // Another deployment (staging, say) given the same SNAPSHOT_TOPIC by mistake: every gateway of
    // either serves the other's tenants too. Its versions are below this store's head, so it does not
    // look like a restore from an older backup.
    const foreignStore = new InMemoryEventStore();
    const foreignDb = await database();
    const foreignTenant = randomUUID();
    const foreign = await foreignStore.appendToStream(streamName.tenant(foreignTenant), [
      tenantCreated(foreignTenant),
    ]);
    projector({ store: foreignStore, db: foreignDb, topic });
    await snapshotSettled(foreignDb.pool, foreignTenant, foreign.position.toString());
    await stopProjectors();

    const store = new InMemoryEventStore();
    const db = await database();
    const own = await createTenants(store, 3);
    expect(foreign.position).toBeLessThan(await store.headPosition());
    projector({ store, db, topic });
    await everySettled(db, own);
    await stopProjectors();

    const logger = recordingLogger();
    const registry = new Registry();
    const running = projector({ store, db, topic, logger, registry });
    await eventually('the comparison made', () => logger.errors.length > 0, 30_000);
    expect(logger.errors.join('\n')).toMatch(/another deployment/);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_topic_foreign_tenants')).toBe(1);
    // This deployment's own tenants still get their changes.
    const tenantId = randomUUID();
    const change = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    await snapshotSettled(db.pool, tenantId, change.position.toString());
    await running.idle();
  }, 120_000);

  it('publishes on while refolding from position 0 under a topic that holds the newest versions', async () => {
    const topic = uniqueTopic('topic-check-refold');
    topics.push(topic);
    const store = new InMemoryEventStore();
    const db = await database();
    const tenantId = randomUUID();
    await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    let last = '';
    for (let key = 0; key < 3; key += 1) {
      last = (
        await store.appendToStream(streamName.tenant(tenantId), [apiKeyIssued(tenantId)])
      ).position.toString();
    }
    projector({ store, db, topic });
    await snapshotSettled(db.pool, tenantId, last);
    await stopProjectors();

    // As a migration that changes the snapshot's shape does: snapshot_state is folded again from the
    // whole log, one event per batch, so the tenant's first versions come below the topic's.
    await db.pool.query('delete from snapshot_state');
    await db.pool.query(`update projection_checkpoints set position = 0 where name = 'gateway_snapshots'`);
    const logger = recordingLogger();
    const registry = new Registry();
    projector({ store, db, topic, logger, registry, batchSize: 1 });
    await snapshotSettled(db.pool, tenantId, last);
    const versions = (await topicRecords(topic))
      .filter((record) => record.key === tenantId)
      .map((record) => record.headers[HEADER_VERSION]);
    expect(versions.at(-1)).toBe(last);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_store_behind_topic')).toBe(0);
    expect(logger.errors).toEqual([]);
  }, 120_000);

  it('starts as usual on a topic that holds exactly what the store published', async () => {
    const topic = uniqueTopic('topic-check-same');
    topics.push(topic);
    const store = new InMemoryEventStore();
    const db = await database();
    const tenantId = randomUUID();
    const created = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    projector({ store, db, topic });
    await snapshotSettled(db.pool, tenantId, created.position.toString());
    await stopProjectors();
    const recordsBefore = (await topicRecords(topic)).length;

    const logger = recordingLogger();
    const registry = new Registry();
    const running = projector({ store, db, topic, logger, registry });
    const change = await store.appendToStream(streamName.tenant(tenantId), [apiKeyIssued(tenantId)]);
    await snapshotSettled(db.pool, tenantId, change.position.toString());
    await running.idle();
    const records = await topicRecords(topic);
    // Nothing republished: only the new version was added.
    expect(records.length).toBe(recordsBefore + 1);
    expect(records.at(-1)?.headers[HEADER_VERSION]).toBe(change.position.toString());
    expect(await gaugeValue(registry, 'vantageedge_snapshot_store_behind_topic')).toBe(0);
    expect(logger.errors).toEqual([]);
  }, 120_000);

  it('publishes while the topic cannot be read, and stops once the read finds the store behind', async () => {
    const topic = uniqueTopic('topic-check-unreadable');
    topics.push(topic);
    const tenantId = randomUUID();
    const stream = streamName.tenant(tenantId);
    const store = new InMemoryEventStore();
    const db = await database();
    await store.appendToStream(stream, [tenantCreated(tenantId)]);

    // One partition without a leader fails the read of the whole topic (as kafkajs reports it), while
    // the tenants of every other partition could be published.
    let readable = false;
    const kafkaBacked = kafkaBus(topic);
    const bus: SnapshotBus = {
      ...kafkaBacked,
      readNewestVersions: () =>
        readable
          ? Promise.resolve(new Map([[tenantId, 1_000_000n]]))
          : Promise.reject(
              new Error(
                'There is no leader for this topic-partition as we are in the middle of a leadership election',
              ),
            ),
    };
    const logger = recordingLogger();
    const registry = new Registry();
    projector({ store, db, topic, bus, logger, registry, topicCheckWaitMs: 100 });

    // A change (an API key revoked, say) still reaches the gateways.
    const change = await store.appendToStream(stream, [apiKeyIssued(tenantId)]);
    await snapshotSettled(db.pool, tenantId, change.position.toString());
    expect(logger.warnings.join('\n')).toMatch(/not compared with the store/);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_store_behind_topic')).toBe(0);

    // The comparison is still made once the topic can be read: a topic ahead of the store stops publishing.
    readable = true;
    await eventually('the store found behind the topic', () => logger.errors.length > 0, 30_000);
    expect(logger.errors.join('\n')).toMatch(/restored from an older backup/);
    expect(await gaugeValue(registry, 'vantageedge_snapshot_store_behind_topic')).toBe(1);
  }, 120_000);

  it('stops without waiting for a read of the topic that does not end', async () => {
    const topic = uniqueTopic('topic-check-stalled');
    topics.push(topic);
    const store = new InMemoryEventStore();
    const db = await database();
    // As kafkajs's consumer does while the broker is gone: it restarts and never fails the read.
    const bus: SnapshotBus = { ...kafkaBus(topic), readNewestVersions: () => new Promise(() => {}) };
    const running = projector({ store, db, topic, bus });
    await store.appendToStream(streamName.tenant(randomUUID()), [tenantCreated(randomUUID())]);
    await eventually('the event is folded', () => running.checkpoint() > 0n, 10_000);
    // A deploy's SIGTERM: the process is not held until its shutdown deadline.
    projectors.splice(projectors.indexOf(running), 1);
    await running.stop();
  }, 20_000);
});
