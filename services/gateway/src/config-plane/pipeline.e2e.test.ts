import { randomUUID } from 'node:crypto';
import {
  type SnapshotProjector,
  startSnapshotProjector,
} from '@vantageedge/projections/snapshots/snapshot-projector';
import {
  apiKeyIssued,
  newEvent,
  originState,
  routeState,
  tenantCreated,
} from '@vantageedge/projections/snapshots/testing';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { silentLogger } from '@vantageedge/shared/observability/logger';
import { createKafkaSnapshotBus } from '@vantageedge/shared/snapshot-bus/kafka-snapshot-bus';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { createPrivateKafka, type PrivateKafka } from '@vantageedge/shared/snapshot-bus/private-kafka';
import { readReplicaVersions } from '@vantageedge/shared/snapshot-bus/rollout-registry';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { type ConfigPlane, startConfigPlane } from './config-plane.js';

/**
 * The snapshot pipeline end to end on real servers: events appended to the PostgreSQL event store →
 * snapshot projector → a PRIVATE Kafka broker (this test stops and starts it) → two gateway config
 * planes, each feeding a real GatewayConfigStore, with rollout heartbeats in Redis.
 */

const SLOW = 60_000;
/**
 * group.min.session.timeout.ms, Kafka's default: the shortest session a broker grants. Back from the
 * outage, a replica's subscription joins its group again once its old membership has expired.
 */
const SHORTEST_SESSION_MS = 6_000;
let kafka: PrivateKafka;
let db: TestDatabase;
let store: PostgresEventStore;
let redis: Redis;
let projector: SnapshotProjector;
const buses: SnapshotBus[] = [];
const replicas: Array<{ id: string; sink: GatewayConfigStore; plane: ConfigPlane }> = [];
const prefix = `ve-test-${uniqueSuffix()}:`;
const topic = `ve-test-pipeline-${uniqueSuffix()}`;

function bus(): SnapshotBus {
  const created = createKafkaSnapshotBus({
    brokers: kafka.brokers,
    clientId: `ve-test-${uniqueSuffix()}`,
    topic,
    partitions: 3,
    replicationFactor: 1,
    maxMessageBytes: 1_048_576,
    stallAfterMs: 2000,
    reconnectDelayMs: 500,
    sessionTimeoutMs: SHORTEST_SESSION_MS,
  });
  buses.push(created);
  return created;
}

function startReplica(): (typeof replicas)[number] {
  const id = `gw-${uniqueSuffix()}`;
  const sink = new GatewayConfigStore({
    baseDomains: ['gw.test'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  const plane = startConfigPlane({
    bus: bus(),
    sink,
    registry: new Registry(),
    logger: silentLogger,
    redis,
    replicaId: id,
    rollout: { prefix, intervalMs: 200 },
  });
  const replica = { id, sink, plane };
  replicas.push(replica);
  return replica;
}

const tenantId = randomUUID();
const origin = originState(tenantId);
const route = routeState(tenantId, origin.origin_id, { path_pattern: '/v1/*' });
const apiKeyId = randomUUID();
const otherTenant = randomUUID();

beforeAll(async () => {
  kafka = await createPrivateKafka();
  await kafka.start();
  db = await createTestDatabase();
  store = new PostgresEventStore({ pool: db.pool });
  redis = new Redis(TEST_INFRA.redisUrl);
  projector = startSnapshotProjector({ store, pool: db.pool, bus: bus(), retryDelayMs: 100 });
}, 240_000);

afterAll(async () => {
  for (const replica of replicas) await replica.plane.close();
  await projector?.stop();
  await Promise.all(buses.map((b) => b.close()));
  await store?.close();
  redis?.disconnect();
  await db?.drop();
  await kafka?.destroy();
}, 120_000);

const both = (check: (sink: GatewayConfigStore) => boolean) => () => replicas.every((r) => check(r.sink));

describe('snapshot pipeline: event store → projector → Kafka → two gateway replicas', () => {
  it('brings both replicas up with the tenant, its route and its key', async () => {
    await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
    await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
    const keyWrite = await store.appendToStream(streamName.apiKey(apiKeyId), [
      apiKeyIssued(tenantId, apiKeyId),
    ]);
    await store.appendToStream(streamName.tenant(otherTenant), [tenantCreated(otherTenant, 'Other')]);
    await eventually('projector folded', () => projector.checkpoint() >= keyWrite.position, SLOW);
    // Snapshots are published after the commit: a replica started before Kafka has them would be
    // ready (caught up to the high-water marks of that moment) without the tenant.
    await projector.idle();

    startReplica();
    startReplica();
    await Promise.all(replicas.map((r) => r.plane.ready));
    for (const { sink, plane } of replicas) {
      expect(plane.status()).toMatchObject({ ready: true, degraded: false, caughtUp: true });
      const tenant = sink.get(tenantId);
      expect(tenant?.router.match('GET', '/v1/things')?.config.id).toBe(route.route_id);
      expect(tenant?.apiKeys.get('a'.repeat(64))?.id).toBe(apiKeyId);
      expect(sink.get(otherTenant)).toBeDefined();
    }
    // Both replicas report their applied version for rollout status.
    const deadline = Date.now() + SLOW;
    let reported: Awaited<ReturnType<typeof readReplicaVersions>> = [];
    while (Date.now() < deadline) {
      reported = await readReplicaVersions(redis, tenantId, { prefix });
      if (reported.length === 2 && reported.every((r) => r.appliedVersion === keyWrite.position)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(reported.map((r) => r.appliedVersion)).toEqual([keyWrite.position, keyWrite.position]);
  }, 120_000);

  it('switches both replicas to an updated route', async () => {
    const write = await store.appendToStream(streamName.route(route.route_id), [
      newEvent('RouteUpdated', { ...route, path_pattern: '/v2/*', changed_fields: ['path_pattern'] }),
    ]);
    await eventually(
      'both on v2',
      both((sink) => sink.get(tenantId)?.version === write.position),
      SLOW,
    );
    for (const { sink } of replicas) {
      expect(sink.get(tenantId)?.router.match('GET', '/v2/things')?.config.id).toBe(route.route_id);
      expect(sink.get(tenantId)?.router.match('GET', '/v1/things')).toBeUndefined();
    }
  });

  it('stops accepting a revoked API key on both replicas', async () => {
    await store.appendToStream(streamName.apiKey(apiKeyId), [
      newEvent('ApiKeyRevoked', { api_key_id: apiKeyId, tenant_id: tenantId, reason: 'leaked' }),
    ]);
    await eventually(
      'key gone',
      both((sink) => sink.get(tenantId)?.apiKeys.size === 0),
      SLOW,
    );
  });

  it('drops a deleted tenant on both replicas', async () => {
    await store.appendToStream(streamName.tenant(otherTenant), [
      newEvent('TenantDeleted', { tenant_id: otherTenant }),
    ]);
    await eventually(
      'tenant dropped',
      both((sink) => sink.get(otherTenant) === undefined),
      SLOW,
    );
    expect(replicas.every((r) => r.sink.resolveHost(`${r.sink.get(tenantId)?.subdomain}.gw.test`))).toBe(
      true,
    );
  });

  it('keeps serving while Kafka is down, reports degraded, and catches up when it returns', async () => {
    await kafka.stop();
    await eventually('both degraded', () => replicas.every((r) => r.plane.status().degraded), SLOW);
    for (const { sink, plane } of replicas) {
      expect(plane.status().ready).toBe(true);
      expect(sink.get(tenantId)?.router.match('GET', '/v2/things')?.config.id).toBe(route.route_id);
    }
    // A change made during the outage is folded (PostgreSQL) and waits for Kafka.
    const write = await store.appendToStream(streamName.route(route.route_id), [
      newEvent('RouteUpdated', { ...route, path_pattern: '/v3/*', changed_fields: ['path_pattern'] }),
    ]);
    await eventually('folded during the outage', () => projector.checkpoint() >= write.position, SLOW);
    expect(replicas.every((r) => r.sink.get(tenantId)?.version !== write.position)).toBe(true);

    await kafka.start();
    await eventually(
      'caught up',
      both((sink) => sink.get(tenantId)?.version === write.position),
      120_000,
    );
    await eventually('healthy again', () => replicas.every((r) => !r.plane.status().degraded), SLOW);
    // A replica can hold the snapshot before snapshot_state says it was published: the publisher
    // records a send once Kafka acknowledges it, and a send that failed in the outage may still land
    // unacknowledged, its tenant sent again once the bus's late-send window has passed.
    const acknowledged = async () => {
      const { rows } = await db.pool.query<{ published_version: string }>(
        'select published_version from snapshot_state where tenant_id = $1',
        [tenantId],
      );
      return rows[0]?.published_version;
    };
    await vi.waitFor(async () => expect(await acknowledged()).toBe(write.position.toString()), {
      timeout: SLOW,
      interval: 50,
    });
  }, 300_000);
});
