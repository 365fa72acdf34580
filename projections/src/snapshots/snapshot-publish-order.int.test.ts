import { randomUUID } from 'node:crypto';
import net from 'node:net';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { HEADER_VERSION } from '@vantageedge/shared/snapshot-bus/codec';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import type { KafkaSnapshotBusOptions } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestKafka, deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { startTcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { logLevel } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startSnapshotPublisher } from './snapshot-publisher.js';
import { saveStates } from './snapshot-state-store.js';
import { onePartitionTestBus, topicRecords as recordsOfTopic } from './testing.js';

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

/** A late-send guard clock that moves only when told to. */
function heldClock(): { now: () => number; advance(ms: number): void } {
  let nowMs = 0;
  return {
    now: () => nowMs,
    advance(ms) {
      nowMs += ms;
    },
  };
}

/** Every record of a one-partition topic, in the order written: key, version header, tombstone. */
async function topicRecords(
  topic: string,
): Promise<Array<{ key: string; version: string; tombstone: boolean }>> {
  return (await recordsOfTopic(topic)).map((record) => ({
    key: record.key ?? '',
    version: record.headers[HEADER_VERSION] ?? '',
    tombstone: record.value === null,
  }));
}

/** Kafka snapshot buses on a one-partition test topic, closed (and the topic deleted) after the describe. */
function kafkaBuses(purpose: string): {
  topic: string;
  kafkaBus(options?: Pick<KafkaSnapshotBusOptions, 'socketFactory'>): SnapshotBus;
} {
  const topic = uniqueTopic(purpose);
  const buses: SnapshotBus[] = [];
  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    await deleteTestTopics([topic]);
  });
  return {
    topic,
    kafkaBus(options = {}) {
      const bus = onePartitionTestBus(topic, 'publish-order', options);
      buses.push(bus);
      return bus;
    },
  };
}

async function publishedVersion(tenantId: string): Promise<string | null> {
  const { rows } = await db.pool.query<{ published_version: string | null }>(
    'select published_version from snapshot_state where tenant_id = $1',
    [tenantId],
  );
  return rows[0]?.published_version ?? null;
}

/** The offset the next record of the one-partition topic gets (its high-water mark). */
async function topicEnd(topic: string): Promise<bigint> {
  const admin = createTestKafka({ level: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [partition] = await admin.fetchTopicOffsets(topic);
    return BigInt(partition!.high);
  } finally {
    await admin.disconnect();
  }
}

describe('a publisher that loses its PostgreSQL session while it sends (real Kafka)', () => {
  const { topic, kafkaBus } = kafkaBuses('publish-lock-lost');

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

describe('a failed send whose request lands late (real Kafka)', () => {
  const { topic, kafkaBus } = kafkaBuses('publish-late-send');

  it('sends the tenant’s newest version once more after the late request could still land', async () => {
    // Every connection of the bus's producers goes through a proxy that can hold a request's bytes, as a
    // middlebox does, and deliver them later.
    const proxy = await startTcpProxy(`kafka://${TEST_INFRA.kafkaBrokers[0]}`);
    const proxyPort = Number(new URL(proxy.urlFor('kafka://127.0.0.1:1')).port);
    const kafka = kafkaBus({
      socketFactory: ({ onConnect }) => net.connect({ host: '127.0.0.1', port: proxyPort }, onConnect),
    });
    let failedSends = 0;
    const bus: SnapshotBus = {
      ...kafka,
      async publish(messages) {
        try {
          return await kafka.publish(messages);
        } catch (error) {
          failedSends += 1;
          throw error;
        }
      },
    };
    const tenantId = randomUUID();
    await save({ status: 'live', snapshot: snapshotOf(tenantId, 4n) });
    // The guard's clock stands still until the late request has landed, however slow this machine is.
    const clock = heldClock();
    const publisher = startSnapshotPublisher({
      pool: db.pool,
      bus,
      tenantPublishBytesPerSecond: 0,
      retryDelayMs: 50,
      lateSendGuardMs: 200,
      lateSendClock: clock.now,
    });
    try {
      await publisher.idle();
      expect(await publishedVersion(tenantId)).toBe('4');

      // Version 5's produce request is held on the wire; then the network fails altogether, longer than
      // the producer retries: the send fails and the bus discards its producer.
      proxy.holdOpenConnections();
      await save({ status: 'live', snapshot: snapshotOf(tenantId, 5n) });
      publisher.request();
      await eventually('version 5’s request is held', () => proxy.heldBytes() > 0);
      proxy.refuseConnections(true);
      proxy.cutClientSide();
      await eventually('the send of version 5 fails', () => failedSends > 0);

      // The network is back: a new producer sends version 6.
      await save({ status: 'live', snapshot: snapshotOf(tenantId, 6n) });
      proxy.refuseConnections(false);
      await vi.waitFor(async () => expect(await publishedVersion(tenantId)).toBe('6'), {
        timeout: 20_000,
        interval: 50,
      });

      // The old producer's request arrives now, behind version 6...
      const late = await topicEnd(topic);
      proxy.releaseHeld();
      await vi.waitFor(async () => expect(await topicEnd(topic)).toBe(late + 1n), {
        timeout: 20_000,
        interval: 50,
      });
      // ...and once the guard's window has passed, version 6 is sent again, behind it.
      clock.advance(1_000);
      await vi.waitFor(async () => expect(await topicEnd(topic)).toBeGreaterThan(late + 1n), {
        timeout: 20_000,
        interval: 100,
      });
      const versions = (await topicRecords(topic)).map((record) => record.version);
      // What compaction keeps of the key, and all a replica starting after it sees: its last written record.
      expect({ late: versions[Number(late)], last: versions.at(-1) }, versions.join(', ')).toEqual({
        late: '5',
        last: '6',
      });
      await publisher.idle();
      expect(await publishedVersion(tenantId)).toBe('6');
    } finally {
      await publisher.stop();
      await proxy.close();
    }
  }, 60_000);
});

describe('the resend after a failed send, while PostgreSQL is unreachable', () => {
  it('is retried until PostgreSQL answers, and the newest version is sent last', async () => {
    // The publisher's connections go through a proxy that can cut them and refuse new ones.
    const proxy = await startTcpProxy(db.url);
    const pool = new pg.Pool({ connectionString: proxy.urlFor(db.url), max: 4 });
    pool.on('error', () => undefined);
    const tenantId = randomUUID();
    const { memory, bus, acknowledged, logs, logger } = acknowledgingBus(tenantId);
    const count = (message: string) => logs.filter((logged) => logged === message).length;
    const unavailable = 'snapshot bus unavailable; will republish';
    await save({ status: 'live', snapshot: snapshotOf(tenantId, 1n) });
    const { clock, publisher } = startGuardedPublisher(pool, bus, logger);
    try {
      await publisher.idle();

      await failTheFirstSendOfVersion2({ tenantId, memory, publisher, logs });
      expect(acknowledged).toEqual(['1', '2']);

      // PostgreSQL is out of reach when the failed send's window has passed: the requeue fails...
      proxy.refuseConnections(true);
      proxy.cutClientSide();
      clock.advance(1_000);
      await eventually('the window has passed', () =>
        logs.includes('snapshots of a failed send sent again after its late-send window'),
      );
      const failuresBefore = count(unavailable);
      await eventually('the requeue fails', () => count(unavailable) > failuresBefore);

      // ...and is tried again until PostgreSQL answers: version 2 is sent once more, last.
      proxy.refuseConnections(false);
      await eventually('version 2 is sent again', () => acknowledged.length === 3);
      expect(acknowledged).toEqual(['1', '2', '2']);
    } finally {
      await publisher.stop();
      await pool.end();
      await proxy.close();
    }
  });
});

describe('the requeue once a failed send’s late-send window has passed', () => {
  it('marks the tenant’s version unpublished once, though both lanes begin then', async () => {
    // Both lanes begin by requeueing what is unsettled. Each requeued the same tenants: the second,
    // waiting on the tenant's lock while the first lane sent its current version, marked that version
    // unpublished again after it was sent, and it stayed pending when the lane that could send it had
    // finished (a small tenant left to the large lane).
    const tenantId = randomUUID();
    const { memory, bus, acknowledged, logs, logger } = acknowledgingBus(tenantId);
    const requeues = { count: 0 };
    const pool = countingRequeues(db.pool, requeues);
    await save({ status: 'live', snapshot: snapshotOf(tenantId, 1n) });
    const { clock, publisher } = startGuardedPublisher(pool, bus, logger);
    try {
      await publisher.idle();
      await failTheFirstSendOfVersion2({ tenantId, memory, publisher, logs });
      expect(acknowledged).toEqual(['1', '2']);

      requeues.count = 0;
      clock.advance(1_000);
      await eventually('version 2 is sent again', () => acknowledged.length === 3);
      await publisher.idle();
      expect(requeues.count).toBe(1);
      expect(await publishedVersion(tenantId)).toBe('2');
    } finally {
      await publisher.stop();
    }
  });
});

describe('a publisher stopped within a failed send’s late-send window (a deploy)', () => {
  it('leaves the tenant’s newest version to be sent again, after the window, by the next publisher', async () => {
    const tenantId = randomUUID();
    const { memory, bus, acknowledged, logs, logger } = acknowledgingBus(tenantId);
    await save({ status: 'live', snapshot: snapshotOf(tenantId, 1n) });
    const { clock, publisher: old } = startGuardedPublisher(db.pool, bus, logger);
    await old.idle();

    await failTheFirstSendOfVersion2({ tenantId, memory, publisher: old, logs });
    expect(acknowledged).toEqual(['1', '2']);

    // The projector is stopped (a rolling deploy) before the failed send's window has passed.
    const stopped = old.stop();
    clock.advance(1_000);
    await stopped;

    // The next publisher (the deploy's new projector) sends version 2 once more: the last record of the
    // key is the newest version, whatever the failed send's request did meanwhile.
    const next = startSnapshotPublisher({ pool: db.pool, bus, tenantPublishBytesPerSecond: 0 });
    try {
      await next.idle();
      expect(acknowledged).toEqual(['1', '2', '2']);
      expect(await publishedVersion(tenantId)).toBe('2');
    } finally {
      await next.stop();
    }
  });
});

/**
 * A publisher that waits out a failed send's late-send window (200 ms) on `heldClock`'s time, so
 * the window passes when a test moves the clock on, not while this machine is slow.
 */
function startGuardedPublisher(
  pool: pg.Pool,
  bus: SnapshotBus,
  logger: ReturnType<typeof acknowledgingBus>['logger'],
) {
  const clock = heldClock();
  const publisher = startSnapshotPublisher({
    pool,
    bus,
    logger,
    tenantPublishBytesPerSecond: 0,
    retryDelayMs: 50,
    lateSendGuardMs: 200,
    lateSendClock: clock.now,
  });
  return { clock, publisher };
}

/**
 * Saves version 2 of the tenant while the bus is down, waits for its send to fail (it may still land
 * later), then brings the bus back and waits for the publisher to send version 2.
 */
async function failTheFirstSendOfVersion2(test: {
  tenantId: string;
  memory: ReturnType<typeof acknowledgingBus>['memory'];
  publisher: ReturnType<typeof startSnapshotPublisher>;
  logs: string[];
}): Promise<void> {
  test.memory.log.setAvailable(false);
  await save({ status: 'live', snapshot: snapshotOf(test.tenantId, 2n) });
  test.publisher.request();
  await eventually('the send of version 2 fails', () =>
    test.logs.includes('snapshot bus unavailable; will republish'),
  );
  test.memory.log.setAvailable(true);
  await test.publisher.idle();
}

/**
 * An in-memory bus that records every version of the tenant it acknowledged, in order, whichever
 * publisher sent it (its log compacts as it goes; a publisher also sends what an earlier test left
 * pending in the shared database), and a logger that records every info and warn message.
 */
function acknowledgingBus(tenantId: string) {
  const memory = createInMemorySnapshotBus();
  const acknowledged: string[] = [];
  const bus: SnapshotBus = {
    ...memory,
    async publish(messages) {
      const result = await memory.publish(messages);
      for (const message of result.published) {
        if (message.tenantId === tenantId) acknowledged.push(message.version.toString());
      }
      return result;
    },
  };
  const logs: string[] = [];
  const logger = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m), error() {} };
  return { memory, bus, acknowledged, logs, logger };
}

/**
 * `pool`, counting in `requeues` the statements that mark published versions unpublished again
 * (requeueForPublication's), whether or not they change a row.
 */
function countingRequeues(pool: pg.Pool, requeues: { count: number }): pg.Pool {
  const counted = (client: pg.PoolClient): pg.PoolClient =>
    new Proxy(client, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property !== 'query') return typeof value === 'function' ? value.bind(target) : value;
        return (...args: unknown[]) => {
          if (typeof args[0] === 'string' && args[0].includes('set published_version = version - 1'))
            requeues.count += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
  return new Proxy(pool, {
    get(target, property) {
      const value = Reflect.get(target, property);
      if (property === 'connect') return async () => counted(await target.connect());
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
