import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createLivePool } from '@vantageedge/shared/postgres/connection-liveness';
import type { SnapshotBus } from '@vantageedge/shared/snapshot-bus/port';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import { deleteTestTopics, uniqueTopic } from '@vantageedge/shared/testing/kafka';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { holdCheckpoint } from '../runner/testing.js';
import { type SnapshotProjector, startSnapshotProjector } from './snapshot-projector.js';
import { newEvent, onePartitionTestBus, originState, routeState, tenantCreated } from './testing.js';

/**
 * The snapshot projector's PostgreSQL connections die without a word while a batch is in flight (a NAT
 * or firewall forgot the flow: its session lives on, in its transaction, holding the checkpoint row).
 * The batch waited for the kernel's retransmission timeout (about 15 minutes): admin changes stopped
 * reaching the gateways meanwhile.
 */
const STATEMENT_DEADLINE_MS = 1_500;
const PROJECTION = `t_${randomUUID().replaceAll('-', '')}`;
const topic = uniqueTopic('dead-connection');
const buses: SnapshotBus[] = [];
let db: TestDatabase;
let store: PostgresEventStore;
let proxy: TcpProxy;
let pool: pg.Pool;
let projectorStore: PostgresEventStore;
let projector: SnapshotProjector;

function kafkaBus(): SnapshotBus {
  const bus = onePartitionTestBus(topic, 'dead-connection');
  buses.push(bus);
  return bus;
}

beforeAll(async () => {
  db = await createTestDatabase();
  store = new PostgresEventStore({ pool: db.pool });
  proxy = await startTcpProxy(db.url);
  // As main.ts composes it, through the proxy.
  pool = createLivePool(
    { connectionString: proxy.urlFor(db.url), max: 5 },
    { statementDeadlineMs: STATEMENT_DEADLINE_MS },
  );
  pool.on('error', () => undefined);
  projectorStore = new PostgresEventStore({ pool });
  projector = startSnapshotProjector({ store: projectorStore, pool, bus: kafkaBus(), name: PROJECTION });
});

afterAll(async () => {
  await projector?.stop();
  await projectorStore?.close();
  await proxy?.close();
  await pool?.end();
  await Promise.all(buses.map((bus) => bus.close()));
  await deleteTestTopics([topic]);
  await store?.close();
  await db?.drop();
});

describe('snapshot projector, its connections dead while a batch is in flight', () => {
  it('resumes from its checkpoint on new connections, and the tenant’s snapshot with every change reaches Kafka', async () => {
    const subscriber = await recordSubscription(kafkaBus());
    const tenantId = randomUUID();
    const created = await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
    await eventually('the tenant published', () =>
      subscriber.versionsOf(tenantId).includes(created.position),
    );

    // The next batch waits in PostgreSQL (another writer holds the checkpoint row)...
    const held = await holdCheckpoint(db.pool, PROJECTION);
    const origin = originState(tenantId);
    await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
    const routeIds: string[] = [];
    let last = created.position;
    for (let index = 0; index < 20; index += 1) {
      const route = routeState(tenantId, origin.origin_id, { path_pattern: `/r${index}/*` });
      routeIds.push(route.route_id);
      last = (await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]))
        .position;
    }
    await expect.poll(() => held.batchesWaiting(), { timeout: 10_000 }).toBe(1);
    // ...when every connection of the projector dies silently; the batch's session lives on.
    proxy.blackholeOpenConnections();
    await held.release();

    await eventually(
      'the newest version published',
      () => subscriber.versionsOf(tenantId).includes(last),
      25_000,
    );
    const published = subscriber.messages.filter((message) => message.tenantId === tenantId).at(-1);
    expect(published?.version).toBe(last);
    expect(
      published?.kind === 'snapshot' && published.snapshot.routes.map((route) => route.id).sort(),
    ).toEqual(routeIds.sort());
    expect(await readCheckpoint(db.pool, PROJECTION)).toBe(last);
  });
});
