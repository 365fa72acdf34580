import { randomBytes, randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import {
  createInMemorySnapshotBus,
  InMemorySnapshotLog,
} from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus, SnapshotMessage } from '@vantageedge/shared/snapshot-bus/port';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestKafka, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnapshotProjector } from './snapshot-projector.js';
import { readTenantVersion } from './snapshot-state.js';
import { apiKeyIssued, newEvent, originState, routeState, tenantCreated } from './testing.js';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

function latestPerTenant(messages: readonly SnapshotMessage[]): Map<string, SnapshotMessage> {
  const latest = new Map<string, SnapshotMessage>();
  for (const message of messages) latest.set(message.tenantId, message);
  return latest;
}

/**
 * A tenant with `routes` routes (their patterns from `pattern`), then a small tenant, which is waited
 * for: the projector went past the big one. Returns the big tenant's id.
 */
async function bigTenantThenSmall(
  store: InMemoryEventStore,
  subscriber: Awaited<ReturnType<typeof recordSubscription>>,
  routes: number,
  pattern: (index: number) => string,
): Promise<string> {
  const big = randomUUID();
  const small = randomUUID();
  const origin = originState(big);
  await store.appendToStream(streamName.tenant(big), [tenantCreated(big)]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  for (let index = 0; index < routes; index += 1) {
    const route = routeState(big, origin.origin_id, { path_pattern: pattern(index) });
    await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
  }
  const smallWrite = await store.appendToStream(streamName.tenant(small), [tenantCreated(small)]);
  await eventually('small tenant published', () =>
    subscriber.versionsOf(small).includes(smallWrite.position),
  );
  return big;
}

describe('snapshot projector (PostgreSQL state, in-memory bus)', () => {
  it('publishes each changed tenant with the version of its newest event, and a tombstone on delete', async () => {
    const store = new InMemoryEventStore();
    const bus = createInMemorySnapshotBus();
    const name = `t_${randomUUID()}`;
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name });
    const subscriber = await recordSubscription(bus);

    const tenantId = randomUUID();
    const origin = originState(tenantId);
    const route = routeState(tenantId, origin.origin_id, { path_pattern: '/v1/*' });
    await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
    const routeWrite = await store.appendToStream(streamName.route(route.route_id), [
      newEvent('RouteCreated', route),
    ]);
    await eventually('route published', () => subscriber.versionsOf(tenantId).includes(routeWrite.position));
    const published = latestPerTenant(subscriber.messages).get(tenantId);
    expect(published?.kind === 'snapshot' && published.snapshot.routes.map((r) => r.path_pattern)).toEqual([
      '/v1/*',
    ]);
    expect(await readTenantVersion(db.pool, tenantId)).toEqual({
      version: routeWrite.position,
      deleted: false,
    });

    // An event that does not reach the gateway moves the checkpoint but publishes nothing.
    const before = subscriber.messages.length;
    const purge = await store.appendToStream(streamName.tenant(tenantId), [
      newEvent('CachePurgeRequested', { tenant_id: tenantId, route_id: null }),
    ]);
    await eventually('checkpoint past purge', () => projector.checkpoint() >= purge.position);
    await projector.idle();
    expect(subscriber.messages.length).toBe(before);

    const deleted = await store.appendToStream(streamName.tenant(tenantId), [
      newEvent('TenantDeleted', { tenant_id: tenantId }),
    ]);
    await eventually(
      'tombstone',
      () => latestPerTenant(subscriber.messages).get(tenantId)?.kind === 'tombstone',
    );
    expect(latestPerTenant(subscriber.messages).get(tenantId)?.version).toBe(deleted.position);
    await projector.stop();
  });

  it('republishes what the bus did not acknowledge, also after a restart', async () => {
    const store = new InMemoryEventStore();
    const log = new InMemorySnapshotLog();
    const bus = createInMemorySnapshotBus({ log });
    const name = `t_${randomUUID()}`;
    log.setAvailable(false);
    const first = startSnapshotProjector({ store, pool: db.pool, bus, name, retryDelayMs: 20 });
    const tenantId = randomUUID();
    const write = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    await eventually('folded while the bus is down', () => first.checkpoint() >= write.position);
    await first.stop();
    expect(log.records).toHaveLength(0);

    log.setAvailable(true);
    const second = startSnapshotProjector({ store, pool: db.pool, bus, name, retryDelayMs: 20 });
    const subscriber = await recordSubscription(bus);
    await eventually('republished after restart', () =>
      subscriber.versionsOf(tenantId).includes(write.position),
    );
    // The restart resumed from the stored checkpoint (read asynchronously at start, hence the wait),
    // which was already past the event: republishing came from snapshot_state, not from a refold.
    await eventually('checkpoint loaded', () => second.checkpoint() === write.position);

    log.setAvailable(false);
    const key = await store.appendToStream(streamName.apiKey(randomUUID()), [apiKeyIssued(tenantId)]);
    await eventually('folded', () => second.checkpoint() >= key.position);
    log.setAvailable(true);
    await eventually('published once the bus is back', () =>
      subscriber.versionsOf(tenantId).includes(key.position),
    );
    await second.stop();
  });

  it('records a snapshot too large for the bus as an error and keeps publishing other tenants', async () => {
    const store = new InMemoryEventStore();
    const bus = createInMemorySnapshotBus({ maxMessageBytes: 16 * 1024 });
    const name = `t_${randomUUID()}`;
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name });
    const subscriber = await recordSubscription(bus);
    const big = await bigTenantThenSmall(
      store,
      subscriber,
      400,
      () => `/${randomUUID()}/${randomUUID()}/${randomUUID()}`,
    );
    await projector.idle();
    const { rows } = await db.pool.query<{
      publish_error: string | null;
      version: string;
      failed_version: string;
    }>('select publish_error, version, failed_version from snapshot_state where tenant_id = $1', [big]);
    expect(rows[0]?.publish_error).toMatch(/over the .*-byte limit/);
    expect(rows[0]?.failed_version).toBe(rows[0]?.version);
    expect(subscriber.versionsOf(big).map(String)).not.toContain(rows[0]?.version);
    await projector.stop();
  });

  it('does not publish a snapshot that fits the bus gzipped but is larger as JSON than gateways inflate', async () => {
    // Regression: 1,100 copies of one certificate made 35.7 MB of JSON that gzip took to 802 KB, under
    // the bus's limit: it was published and marked so, and every gateway refused to inflate it (over
    // MAX_DECODED_SNAPSHOT_BYTES) and kept the tenant's old config, with no publish_error anywhere.
    const store = new InMemoryEventStore();
    const maxDecodedBytes = 64 * 1024;
    const bus = createInMemorySnapshotBus({ maxDecodedBytes });
    const name = `t_${randomUUID()}`;
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name });
    const subscriber = await recordSubscription(bus);
    // Repetitive routes: gzip makes them tiny, their JSON is well over the (test's) inflate limit.
    const big = await bigTenantThenSmall(store, subscriber, 300, (index) => `/${'a'.repeat(200)}/${index}`);
    await projector.idle();
    const { rows } = await db.pool.query<{
      publish_error: string | null;
      version: string;
      failed_version: string | null;
      published_version: string | null;
      snapshot: unknown;
    }>(
      'select publish_error, version, failed_version, published_version, snapshot from snapshot_state where tenant_id = $1',
      [big],
    );
    const row = rows[0]!;
    expect(Buffer.byteLength(JSON.stringify(row.snapshot))).toBeGreaterThan(maxDecodedBytes);
    expect(row.publish_error).toMatch(
      /bytes of JSON, over the 65536-byte limit .*MAX_DECODED_SNAPSHOT_BYTES/,
    );
    expect(row.failed_version).toBe(row.version);
    expect(row.published_version).not.toBe(row.version);
    expect(subscriber.versionsOf(big).map(String)).not.toContain(row.version);
    // Nothing reached a gateway only to be refused there.
    expect(subscriber.invalid).toEqual([]);
    expect(await readTenantVersion(db.pool, big)).toEqual({
      version: BigInt(row.version),
      deleted: false,
      publishError: row.publish_error,
    });
    await projector.stop();
  });

  it('keeps publishing other tenants while one tenant’s sends keep failing, and sends it once they succeed', async () => {
    // Regression: a send to Kafka fails as a whole when one of its partitions cannot take a write (no
    // leader, too few in-sync replicas), and the publisher retried the same oldest tenants for ever:
    // one tenant on an unwritable partition held back every other tenant's snapshots.
    const store = new InMemoryEventStore();
    const inner = createInMemorySnapshotBus();
    const unwritable = new Set<string>();
    const bus: SnapshotBus = {
      ...inner,
      async publish(messages) {
        const refused = messages.find((message) => unwritable.has(message.tenantId));
        if (refused) throw new Error(`NOT_ENOUGH_REPLICAS: the partition of tenant ${refused.tenantId}`);
        return inner.publish(messages);
      },
    };
    const name = `t_${randomUUID()}`;
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name, retryDelayMs: 20 });
    const subscriber = await recordSubscription(inner);
    const stuck = randomUUID();
    unwritable.add(stuck);
    const stuckWrite = await store.appendToStream(streamName.tenant(stuck), [tenantCreated(stuck)]);
    const others = [randomUUID(), randomUUID(), randomUUID()];
    const positions: bigint[] = [];
    for (const tenantId of others) {
      positions.push(
        (await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)])).position,
      );
    }
    await eventually('the other tenants published', () =>
      others.every((tenantId, index) => subscriber.versionsOf(tenantId).includes(positions[index]!)),
    );
    expect(subscriber.versionsOf(stuck)).toEqual([]);

    unwritable.delete(stuck);
    await eventually('the stuck tenant published once its sends succeed', () =>
      subscriber.versionsOf(stuck).includes(stuckWrite.position),
    );
    await projector.stop();
  });

  it('after an outage of the whole bus, publishes the pending tenants in full batches again', async () => {
    // Regression: during an outage every send fails, so every pending tenant was backed off down to
    // batches of one, and stayed so once the bus was back: 250 pending tenants took 134 sends (each a
    // PostgreSQL transaction and a Kafka request) instead of 2 or 3.
    const store = new InMemoryEventStore();
    const inner = createInMemorySnapshotBus();
    let down = true;
    const failedAlone = new Set<string>();
    const bus = recordingBus({
      ...inner,
      async publish(messages) {
        if (!down) return inner.publish(messages);
        if (messages.length === 1) failedAlone.add(messages[0]!.tenantId);
        throw new Error('KafkaJSNumberOfRetriesExceeded: connect ECONNREFUSED');
      },
    });
    const name = `t_${randomUUID()}`;
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name, retryDelayMs: 5 });
    const subscriber = await recordSubscription(inner);
    const tenants = Array.from({ length: 250 }, () => randomUUID());
    for (const tenantId of tenants)
      await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    // Long enough for the back-off to send tenants alone: what Kafka refuses then is not one tenant's.
    await eventually('sends of single tenants failing', () => failedAlone.size >= 2, 60_000);

    down = false;
    const callsInOutage = bus.calls.length;
    await eventually(
      'every tenant published',
      () => tenants.every((tenantId) => subscriber.versionsOf(tenantId).length > 0),
      60_000,
    );
    // One send that finds the bus back (a tenant alone), then the 250 tenants in batches of 200.
    expect(bus.calls.length - callsInOutage).toBeLessThanOrEqual(4);
    await projector.stop();
  }, 120_000);
});

/** Every bus call of a publisher: which tenants at which versions, when it started and ended. */
interface PublishCall {
  messages: Array<{ tenantId: string; version: bigint }>;
  start: number;
  end?: number;
}

function recordingBus(bus: SnapshotBus): SnapshotBus & { calls: PublishCall[] } {
  const calls: PublishCall[] = [];
  return {
    ...bus,
    calls,
    async publish(messages) {
      const call: PublishCall = {
        messages: messages.map(({ tenantId, version }) => ({ tenantId, version })),
        start: performance.now(),
      };
      calls.push(call);
      try {
        return await bus.publish(messages);
      } finally {
        call.end = performance.now();
      }
    },
  };
}

describe('snapshot publisher with a tenant over the bus limit (real Kafka, 8 MiB)', () => {
  // Regression (F3): a tenant whose snapshot is too large for the bus was encoded (stringify + gzip of
  // 14 MB: about 300 ms) in the same pass as every other tenant's change, ahead of them: other tenants'
  // changes reached the gateways 1.1–2.3 s late instead of 20–80 ms.
  const topic = uniqueTopic('oversized');
  const buses: SnapshotBus[] = [];
  const kafkaBus = () => {
    const bus = createKafkaSnapshotBus({
      brokers: TEST_INFRA.kafkaBrokers,
      clientId: `ve-test-oversized-${randomUUID()}`,
      topic,
      partitions: 3,
      replicationFactor: 1,
      maxMessageBytes: 8 * 1024 * 1024,
    });
    buses.push(bus);
    return bus;
  };
  afterAll(async () => {
    await Promise.all(buses.map((bus) => bus.close()));
    const admin = createTestKafka({ level: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.disconnect();
  });

  it('does not encode a refused version again, and publishes another tenant while a large one is encoded', async () => {
    const store = new InMemoryEventStore();
    const bus = recordingBus(kafkaBus());
    const name = `t_${randomUUID()}`;
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name, publishPollMs: 100 });
    const subscriber = await recordSubscription(kafkaBus());
    const state = async (tenantId: string) =>
      (
        await db.pool.query<{ version: string; failed_version: string | null; publish_error: string | null }>(
          'select version, failed_version, publish_error from snapshot_state where tenant_id = $1',
          [tenantId],
        )
      ).rows[0];
    const encodesOf = (tenantId: string, version: bigint) =>
      bus.calls.filter((call) => call.messages.some((m) => m.tenantId === tenantId && m.version === version));

    // 14 MB of random URLs: about 10.4 MB after gzip, over the topic's 8 MiB.
    const big = randomUUID();
    const origin = {
      ...originState(big),
      targets: Array.from({ length: 100 }, () => ({
        url: `https://o.example.com/${randomBytes(105_000).toString('base64url')}`,
        weight: 1,
      })),
    };
    await store.appendToStream(streamName.tenant(big), [tenantCreated(big)]);
    const refused = await store.appendToStream(streamName.origin(origin.origin_id), [
      newEvent('OriginCreated', origin),
    ]);
    const victim = randomUUID();
    const victimOrigin = originState(victim);
    await store.appendToStream(streamName.tenant(victim), [tenantCreated(victim)]);
    await store.appendToStream(streamName.origin(victimOrigin.origin_id), [
      newEvent('OriginCreated', victimOrigin),
    ]);
    await eventually('refused', () =>
      encodesOf(big, refused.position).some((call) => call.end !== undefined),
    );
    for (let waited = 0; (await state(big))?.failed_version !== String(refused.position); waited += 1) {
      expect(waited).toBeLessThan(400);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect((await state(big))?.publish_error).toMatch(/bytes after gzip, over the 8387584-byte limit/);

    // Other tenants' changes and the publisher's polls (every 100 ms) do not encode it again.
    const victimChange = async (label: string) => {
      const write = await store.appendToStream(streamName.origin(victimOrigin.origin_id), [
        newEvent('OriginUpdated', { ...victimOrigin, name: label, changed_fields: ['name'] }),
      ]);
      const started = performance.now();
      await eventually(`victim ${label}`, () => subscriber.versionsOf(victim).includes(write.position));
      return { latency: performance.now() - started, position: write.position };
    };
    for (const label of ['a', 'b', 'c']) await victimChange(label);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(encodesOf(big, refused.position)).toHaveLength(1);

    // The big tenant changes (still too large): while its new version is being encoded, another
    // tenant's change is published, in a call of its own, before that encoding ends.
    const changed = await store.appendToStream(streamName.origin(origin.origin_id), [
      newEvent('OriginUpdated', { ...origin, name: 'renamed', changed_fields: ['name'] }),
    ]);
    await eventually('encoding the new version', () => encodesOf(big, changed.position).length > 0);
    const during = await victimChange('during');
    const bigCall = encodesOf(big, changed.position)[0]!;
    const victimCall = encodesOf(victim, during.position)[0]!;
    await eventually('encoded', () => bigCall.end !== undefined);
    expect(victimCall).not.toBe(bigCall);
    expect(victimCall.end!).toBeLessThan(bigCall.end!);
    expect(during.latency).toBeLessThan(bigCall.end! - bigCall.start);
    await projector.stop();
  }, 60_000);
});
