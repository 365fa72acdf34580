import { randomUUID } from 'node:crypto';
import type { ControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { streamName } from '@vantageedge/shared/domain/events';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { eventually, recordSubscription } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction } from '../runner/in-transaction.js';
import { RoundTripEventStore } from '../runner/testing.js';
import { snapshotProjection } from './snapshot-projection.js';
import { startSnapshotProjector } from './snapshot-projector.js';
import { newEvent, originState, routeState, snapshotStateOf, tenantCreated } from './testing.js';

/**
 * Every tenant's change goes through the one snapshot projector in log order, and each batch stores the
 * whole snapshot of every tenant it touches (hundreds of milliseconds for a tenant near the snapshot
 * bound). A tenant whose admin keeps changing such a config must cost another tenant's change at most
 * the batch being stored when it was made and the batch it is folded in — not also a batch made of
 * what the subscription read while the first was stored; and in the batch it is folded in, it is stored
 * ahead of a large tenant, so only the store in flight when it was made is in front of it.
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

/**
 * A pool whose saves of `tenantId`'s snapshot each wait for the next of `holds` (none left: they go on).
 */
function poolHoldingStoresOf(url: string) {
  const holds: Array<{ reached: () => void; released: Promise<void>; fails: boolean }> = [];
  const held = { tenantId: '' };
  const pool = new pg.Pool({ connectionString: url, max: 5 });
  pool.on('error', () => {});
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => Promise<pg.QueryResult>;
    const holding = async (...args: unknown[]) => {
      const text = typeof args[0] === 'string' ? args[0] : '';
      if (text.startsWith('insert into snapshot_state')) {
        const saved = (args[1] as unknown[])[0];
        const hold = (Array.isArray(saved) ? saved : [saved]).includes(held.tenantId) && holds.shift();
        if (hold) {
          hold.reached();
          await hold.released;
          if (hold.fails) throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
        }
      }
      return query(...args);
    };
    (client as unknown as { query: typeof holding }).query = holding;
  });
  /**
   * Holds the tenant's next store (`fails`: then fails it, as a deadlock would, rolling its batch back):
   * `reached` resolves once the store is reached, `release` lets it go on.
   */
  const holdNextStore = ({ fails = false } = {}) => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const reached = new Promise<void>((resolve) => holds.push({ reached: resolve, released, fails }));
    return { reached, release };
  };
  return { pool, held, holdNextStore };
}

async function tenantWithRoute(store: RoundTripEventStore, routes = 1) {
  const tenantId = randomUUID();
  const origin = originState(tenantId);
  const states = Array.from({ length: routes }, (_, index) =>
    routeState(
      tenantId,
      origin.origin_id,
      routes === 1 ? {} : { path_pattern: `/${'a'.repeat(1900)}/${index}` },
    ),
  );
  const route = states[0]!;
  await store.appendToStream(streamName.tenant(tenantId), [tenantCreated(tenantId)]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  await store.appendToStream(
    streamName.tenant(tenantId),
    states.map((state) => newEvent('RouteCreated', state)),
  );
  let priority = 0;
  return {
    tenantId,
    /** Changes the tenant's first route; `occurredAt` is the event's time as recorded. */
    change: async (occurredAt?: string) => {
      priority += 1;
      const written = await store.appendToStream(streamName.route(route.route_id), [
        newEvent('RouteUpdated', { ...route, priority, changed_fields: ['priority'] }, occurredAt),
      ]);
      return written.position;
    },
  };
}

/**
 * A projector (named `name`) over a pool holding the large tenant's stores, once it has folded a large
 * tenant (700 routes) and another tenant; its snapshots are seen by `subscriber`.
 */
async function largeAndOtherSeeded(options: { retryDelayMs?: number } = {}) {
  const store = new RoundTripEventStore();
  const bus = createInMemorySnapshotBus();
  const subscriber = await recordSubscription(bus);
  const { pool, held, holdNextStore } = poolHoldingStoresOf(db.url);
  const name = `t_${randomUUID()}`;
  const projector = startSnapshotProjector({ store, pool, bus, name, ...options });
  const large = await tenantWithRoute(store, 700);
  const other = await tenantWithRoute(store);
  const seeded = await store.headPosition();
  await eventually('seeded', () => projector.checkpoint() >= seeded);
  held.tenantId = large.tenantId;
  return { store, pool, name, projector, subscriber, holdNextStore, large, other };
}

/**
 * A projector over a pool holding the large tenant's stores (700 routes of ~2 KB: a snapshot of about
 * 1.4 MB of JSON), and another tenant. While the large tenant's change is stored (`first` is held), it
 * changes again, then the other tenant changes: the next batch folds both.
 */
async function otherChangedWhileLargeStored(options: { retryDelayMs?: number } = {}) {
  const { store, pool, projector, subscriber, holdNextStore, large, other } =
    await largeAndOtherSeeded(options);
  const first = holdNextStore();
  await large.change();
  await first.reached;
  const largeChange = await large.change();
  await store.untilRead(largeChange);
  const otherChange = await other.change();
  return { pool, projector, subscriber, holdNextStore, first, large, other, largeChange, otherChange };
}

/** Both tenants changed (`otherChange`, `largeChange`: their positions), seen by `subscriber`. */
interface BothChanged {
  readonly subscriber: Awaited<ReturnType<typeof recordSubscription>>;
  readonly other: { readonly tenantId: string };
  readonly large: { readonly tenantId: string };
  readonly otherChange: bigint;
  readonly largeChange: bigint;
}

/**
 * The other tenant's change is published while the large tenant's store is held; once `held` is
 * released, the large tenant's change is published too.
 */
async function otherPublishedWhileLargeStored(changed: BothChanged, held: { release: () => void }) {
  const { subscriber, other, large } = changed;
  await eventually('the other tenant’s change published while the large tenant’s is stored', () =>
    subscriber.versionsOf(other.tenantId).includes(changed.otherChange),
  );
  held.release();
  await eventually('the large tenant’s change published', () =>
    subscriber.versionsOf(large.tenantId).includes(changed.largeChange),
  );
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

describe('another tenant’s change folded with a large tenant’s', () => {
  it('is stored and published ahead of the large tenant’s snapshot, not behind it', async () => {
    const changed = await otherChangedWhileLargeStored();
    const { pool, projector, holdNextStore, first } = changed;
    const second = holdNextStore();
    first.release();
    await second.reached;

    await otherPublishedWhileLargeStored(changed, second);
    await projector.stop();
    await pool.end();
  });
});

describe('a batch folded again after its tenants were stored ahead of it', () => {
  it('leaves their states as they are: no version goes back, no change is applied twice', async () => {
    const store = new RoundTripEventStore();
    const other = await tenantWithRoute(store);
    await other.change();
    const last = await other.change();
    const events = (await store.readAll()) as ControlPlaneEvent[];
    const projection = snapshotProjection({ name: `t_${randomUUID()}` });
    await inTransaction(db.pool, (client) => projection.handle(events, { client }));
    expect((await snapshotStateOf(db.pool, other.tenantId))?.version).toBe(last.toString());

    // The batch that held its first change rolled back after the tenant was stored ahead of it: the
    // retry folds that change again, onto the state that already holds the newer one.
    await inTransaction(db.pool, (client) => projection.handle(events.slice(-2, -1), { client }));
    expect((await snapshotStateOf(db.pool, other.tenantId))?.version).toBe(last.toString());
  });
});

describe('a batch rolled back after another tenant was stored ahead of its large tenant', () => {
  it('is folded again: the other tenant’s version stays, the large tenant’s change is published', async () => {
    const changed = await otherChangedWhileLargeStored({ retryDelayMs: 20 });
    const { pool, projector, subscriber, holdNextStore, first, other, otherChange } = changed;
    const failing = holdNextStore({ fails: true });
    first.release();
    await failing.reached;
    await otherPublishedWhileLargeStored(changed, failing);
    await eventually('the batch folded again', () => projector.checkpoint() >= otherChange);
    expect((await snapshotStateOf(pool, other.tenantId))?.version).toBe(otherChange.toString());
    const versions = subscriber.versionsOf(other.tenantId);
    expect(versions).toEqual([...versions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    await projector.stop();
    await pool.end();
  });
});

describe('a large tenant’s event its batch cannot store, beside another tenant stored ahead', () => {
  it('quarantines the large tenant only: the other tenant’s changes before and after it are in once, in order', async () => {
    const { store, pool, name, projector, subscriber, holdNextStore, large, other } =
      await largeAndOtherSeeded({ retryDelayMs: 5 });
    const first = holdNextStore();
    await large.change();
    await first.reached;
    // One batch: the other tenant's change, the large tenant's change PostgreSQL refuses to store (its
    // time is no timestamp), the other tenant's next change.
    await other.change();
    const poison = await large.change('not-a-time');
    const after = await other.change();
    await store.untilRead(after);
    first.release();

    await eventually('the batch folded past the poison event', () => projector.checkpoint() >= after);
    const later = await large.change();
    const otherLast = await other.change();
    await eventually('the later changes folded', () => projector.checkpoint() >= otherLast);
    await projector.idle();

    const { rows } = await pool.query<{ position: string; tenant_id: string; reason: string }>(
      'select position, tenant_id, reason from projection_parked_events where projection = $1 order by position',
      [name],
    );
    expect(rows.map((row) => [BigInt(row.position), row.tenant_id, row.reason])).toEqual([
      [poison, large.tenantId, 'failed'],
      [later, large.tenantId, 'quarantined'],
    ]);
    expect((await snapshotStateOf(pool, other.tenantId))?.version).toBe(otherLast.toString());
    const versions = subscriber.versionsOf(other.tenantId);
    expect(versions).toContain(after);
    expect(versions.at(-1)).toBe(otherLast);
    expect(versions).toEqual([...versions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    await projector.stop();
    await pool.end();
  });
});

describe('a large tenant’s change beside another tenant’s, after a restart', () => {
  it('stores and publishes the other tenant’s change ahead of the large tenant’s snapshot', async () => {
    const store = new RoundTripEventStore();
    const bus = createInMemorySnapshotBus();
    const subscriber = await recordSubscription(bus);
    const { pool, held, holdNextStore } = poolHoldingStoresOf(db.url);
    const name = `t_${randomUUID()}`;
    const before = startSnapshotProjector({ store, pool, bus, name });
    const large = await tenantWithRoute(store, 700);
    const other = await tenantWithRoute(store);
    const seeded = await store.headPosition();
    await eventually('seeded', () => before.checkpoint() >= seeded);
    await before.stop();

    // Both change while no projector runs: the restarted one folds them in its first batch, knowing
    // the large tenant's snapshot only as stored.
    const largeChange = await large.change();
    const otherChange = await other.change();
    held.tenantId = large.tenantId;
    const largeStore = holdNextStore();
    // Not compared with the topic at start: this database holds other tests' tenants, acknowledged on
    // their own buses, and having them all sent again would wait for the large tenant's locked row.
    const { readNewestVersions: _compared, ...uncompared } = bus;
    const after = startSnapshotProjector({ store, pool, bus: uncompared, name });
    await largeStore.reached;

    await otherPublishedWhileLargeStored({ subscriber, other, large, otherChange, largeChange }, largeStore);
    await after.stop();
    await pool.end();
  });
});

describe('a large tenant’s change beside another tenant’s, its snapshot no longer kept', () => {
  it('stores the other tenant’s change ahead of the large tenant’s snapshot', async () => {
    const store = new RoundTripEventStore();
    const large = await tenantWithRoute(store, 700);
    const other = await tenantWithRoute(store);
    const { pool, held, holdNextStore } = poolHoldingStoresOf(db.url);
    // Keeps no snapshot of the large tenant's size between batches.
    const projection = snapshotProjection({ name: `t_${randomUUID()}`, pool, keptSnapshotBytes: 64 * 1024 });
    const seed = (await store.readAll()) as ControlPlaneEvent[];
    await inTransaction(pool, (client) => projection.handle(seed, { client }));

    await large.change();
    const otherChange = await other.change();
    const batch = ((await store.readAll()) as ControlPlaneEvent[]).slice(seed.length);
    held.tenantId = large.tenantId;
    const largeStore = holdNextStore();
    const handled = inTransaction(pool, (client) => projection.handle(batch, { client }));
    await largeStore.reached;
    const otherStored = (await snapshotStateOf(db.pool, other.tenantId))?.version;
    largeStore.release();
    await handled;

    expect(otherStored).toBe(otherChange.toString());
    await pool.end();
  });
});
