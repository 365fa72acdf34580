import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RoundTripEventStore } from '../runner/testing.js';
import { startSnapshotProjector } from './snapshot-projector.js';
import { newEvent, originState, routeState, tenantCreated } from './testing.js';

/**
 * Every tenant's change goes through the one snapshot projector in log order, and each batch stores the
 * whole snapshot of every tenant it touches (hundreds of milliseconds for a tenant near the snapshot
 * bound). A tenant whose admin keeps changing such a config must cost another tenant's change at most
 * the batch being stored when it was made and the batch it is folded in — not also a batch made of
 * what the subscription read while the first was stored.
 */
let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase();
});
afterAll(async () => {
  await db?.drop();
});

/**
 * A pool whose snapshot saves are recorded per committed batch (the tenant ids saved before each
 * checkpoint advance), and held while `hold` is set.
 */
function poolRecordingBatches(url: string) {
  const recorded = { batches: [] as string[][], current: [] as string[] };
  const gate: { hold: Promise<void> | null; reached: () => void } = { hold: null, reached: () => {} };
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<pg.QueryResult>;
    const recording = async (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (text.startsWith('insert into snapshot_state')) {
        const saved = (args[1] as unknown[])[0];
        recorded.current.push(...(Array.isArray(saved) ? saved : [saved]).map(String));
        if (gate.hold) {
          gate.reached();
          await gate.hold;
        }
      }
      const result = await query(...args);
      if (text.startsWith('update projection_checkpoints')) {
        recorded.batches.push(recorded.current.sort());
        recorded.current = [];
      }
      return result;
    };
    (client as unknown as { query: typeof recording }).query = recording;
  });
  return { pool, recorded, gate };
}

async function tenantWithRoute(store: RoundTripEventStore) {
  const tenantId = randomUUID();
  const origin = originState(tenantId);
  const route = routeState(tenantId, origin.origin_id);
  await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
  let priority = 0;
  return {
    tenantId,
    change: async () => {
      priority += 1;
      const written = await store.appendToStream(streamName.route(route.route_id), [
        newEvent('RouteUpdated', { ...route, priority, changed_fields: ['priority'] }),
      ]);
      return written.position;
    },
  };
}

describe('another tenant’s change while a churning tenant’s snapshot is stored', () => {
  it('is folded in the next batch, behind no further snapshot of the churning tenant', async () => {
    const store = new RoundTripEventStore();
    const { pool, recorded, gate } = poolRecordingBatches(db.url);
    const projector = startSnapshotProjector({
      store,
      pool,
      bus: createInMemorySnapshotBus(),
      name: `t_${randomUUID()}`,
    });
    const churning = await tenantWithRoute(store);
    const other = await tenantWithRoute(store);
    const seeded = await store.headPosition();
    await eventually('seeded', () => projector.checkpoint() >= seeded);

    let release!: () => void;
    gate.hold = new Promise<void>((resolve) => {
      release = resolve;
    });
    const storing = new Promise<void>((resolve) => {
      gate.reached = resolve;
    });
    const from = recorded.batches.length;
    await churning.change();
    await storing;
    gate.hold = null;
    // While that batch is stored, the churning tenant changes again (read by the subscription at once),
    // then the other tenant changes.
    await store.untilRead(await churning.change());
    const otherChange = await other.change();
    release();
    await eventually('the other tenant’s change folded', () => projector.checkpoint() >= otherChange);

    expect(recorded.batches.slice(from)).toEqual([
      [churning.tenantId],
      [churning.tenantId, other.tenantId].sort(),
    ]);
    await projector.stop();
    await pool.end();
  });
});
