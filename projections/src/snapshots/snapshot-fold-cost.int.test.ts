import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnapshotProjector } from './snapshot-projector.js';
import { newEvent, originState, routeState, tenantCreated } from './testing.js';

/**
 * A tenant admin may send 10 commands a second, and live each one is a batch of its own. The projector
 * used to read the tenant's whole snapshot back from PostgreSQL (and parse it) for every such batch: for
 * a tenant of 2.4 MB of JSON, 30–60 ms of the 110–160 ms each of its changes cost, which every other
 * tenant's change waited behind (docs/capacity.md, "A tenant changing as fast as its admins may").
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/** A pool that counts the bytes of snapshot bodies read by statements that lock rows (the projector's). */
function poolCountingSnapshotReads(url: string) {
  const reads = { bytes: 0 };
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<pg.QueryResult>;
    const counting = async (...args: unknown[]) => {
      const result = await query(...args);
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (text.includes('for update')) {
        for (const row of result.rows as Array<{ snapshot?: unknown }>) {
          if (row.snapshot) reads.bytes += JSON.stringify(row.snapshot).length;
        }
      }
      return result;
    };
    (client as unknown as { query: typeof counting }).query = counting;
  });
  return { pool, reads };
}

async function largeTenant(store: InMemoryEventStore, routes: number) {
  const tenantId = randomUUID();
  const origin = originState(tenantId);
  await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  const states = Array.from({ length: routes }, (_, index) =>
    routeState(tenantId, origin.origin_id, { path_pattern: `/${'a'.repeat(1900)}/${index}` }),
  );
  const written = await store.appendToStream(
    streamName.tenant(tenantId),
    states.map((route) => newEvent('RouteCreated', route)),
  );
  return { tenantId, routes: states, position: written.position };
}

describe('folding a large tenant’s changes', () => {
  it('folds each change onto the state it kept, without reading the tenant’s snapshot back from PostgreSQL', async () => {
    const store = new InMemoryEventStore();
    const bus = createInMemorySnapshotBus();
    const { pool, reads } = poolCountingSnapshotReads(db.url);
    const projector = startSnapshotProjector({ store, pool, bus, name: `t_${randomUUID()}` });
    const subscriber = await recordSubscription(bus);
    const tenant = await largeTenant(store, 300);
    await eventually('built', () => projector.checkpoint() >= tenant.position);

    const before = reads.bytes;
    let newest = tenant.position;
    for (let index = 0; index < 5; index += 1) {
      const route = tenant.routes[index]!;
      newest = (
        await store.appendToStream(streamName.route(route.route_id), [
          newEvent('RouteUpdated', { ...route, priority: index + 1, changed_fields: ['priority'] }),
        ])
      ).position;
      await eventually(`change ${index} folded`, () => projector.checkpoint() >= newest);
    }
    await eventually('newest published', () => subscriber.versionsOf(tenant.tenantId).includes(newest));
    const published = subscriber.messages.findLast((message) => message.tenantId === tenant.tenantId);
    expect(
      published?.kind === 'snapshot' && published.snapshot.routes.filter((route) => route.priority > 0),
    ).toHaveLength(5);
    // Five batches of one change each: the ~600 KB snapshot was never read back.
    expect(reads.bytes - before).toBe(0);
    await projector.stop();
    await pool.end();
  });

  it('folds onto the stored snapshot when it was rewritten behind the projector (a refold)', async () => {
    const store = new InMemoryEventStore();
    const bus = createInMemorySnapshotBus();
    const projector = startSnapshotProjector({ store, pool: db.pool, bus, name: `t_${randomUUID()}` });
    const subscriber = await recordSubscription(bus);
    const tenant = await largeTenant(store, 3);
    await eventually('built', () => projector.checkpoint() >= tenant.position);

    // Same version, other content: what a refold with a corrected fold writes.
    await db.pool.query(
      `update snapshot_state set snapshot = jsonb_set(snapshot, '{tenant,name}', '"Refolded"'), updated_at = now()
       where tenant_id = $1`,
      [tenant.tenantId],
    );
    const route = tenant.routes[0]!;
    const change = await store.appendToStream(streamName.route(route.route_id), [
      newEvent('RouteUpdated', { ...route, priority: 7, changed_fields: ['priority'] }),
    ]);
    await eventually('published', () => subscriber.versionsOf(tenant.tenantId).includes(change.position));
    const published = subscriber.messages.findLast((message) => message.tenantId === tenant.tenantId);
    expect(published?.kind === 'snapshot' && published.snapshot.tenant.name).toBe('Refolded');
    await projector.stop();
  });
});
