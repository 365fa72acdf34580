import { randomUUID } from 'node:crypto';
import { CONTROL_PLANE_UPCASTERS } from '@vantageedge/shared/domain/event-upcasters';
import { streamName } from '@vantageedge/shared/domain/events';
import type { NewEvent, RecordedEvent } from '@vantageedge/shared/event-store/port';
import {
  PostgresEventStore,
  type PostgresEventStoreOptions,
} from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refoldSnapshots } from './refold.js';
import { startSnapshotProjector } from './snapshot-projector.js';
import { readSnapshotsPosition, SNAPSHOT_PROJECTION } from './snapshot-state.js';
import { newEvent, originState, routeState, tenantCreated } from './testing.js';

/**
 * The snapshot projection gets the runner's poison-event policy too: a route event recorded with a
 * tenant id that is not a uuid fails the snapshot batch (PostgreSQL refuses it, 22P02). Its tenant is
 * quarantined in the snapshots (its gateway config stays as it was before the event) while every other
 * tenant's changes keep reaching the gateways; a refold after the fix gets the tenant back.
 */
let database: TestDatabase;
let store: PostgresEventStore;
let fixedStore: PostgresEventStore;

const a = randomUUID();
const b = randomUUID();
const aOrigin = originState(a);
const brokenRoute = { ...routeState(a, aOrigin.origin_id), tenant_id: 'not-a-uuid' };

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  // The fix, as an upcaster would ship it: the route reads with its tenant's id.
  const fix = (event: RecordedEvent): RecordedEvent => {
    const data = event.data as { tenant_id?: unknown };
    return data.tenant_id === 'not-a-uuid' ? { ...event, data: { ...data, tenant_id: a } } : event;
  };
  const upcasters = {
    apply: (event: RecordedEvent) => fix(CONTROL_PLANE_UPCASTERS.apply(event)),
  } as unknown as NonNullable<PostgresEventStoreOptions['upcasters']>;
  fixedStore = new PostgresEventStore({ pool: database.pool, upcasters });
});

afterAll(async () => {
  await store.close();
  await fixedStore.close();
  await database.drop();
});

async function append(stream: string, event: NewEvent): Promise<bigint> {
  return (await store.appendToStream(stream, [event])).position;
}

async function appendRoute(route: { route_id: string; tenant_id: string }, tenantId = route.tenant_id) {
  const event = newEvent('RouteCreated', route as never);
  return append(streamName.route(route.route_id), {
    ...event,
    metadata: { ...event.metadata, tenant_id: tenantId },
  });
}

/** A tenant with one origin and one route; the route's event position. */
async function appendTenantWithRoute(tenantId: string, name: string) {
  await append(streamName.tenant(tenantId), tenantCreated(tenantId, name));
  const origin = originState(tenantId);
  await append(streamName.origin(origin.origin_id), newEvent('OriginCreated', origin));
  const route = routeState(tenantId, origin.origin_id);
  return { origin, route, position: await appendRoute(route) };
}

/** The snapshot projector on the test's store, publishing to `bus`. */
function startProjector(bus = createInMemorySnapshotBus()) {
  return startSnapshotProjector({ store, pool: database.pool, bus, retryDelayMs: 5 });
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function routesOf(tenantId: string): Promise<string[]> {
  const { rows } = await database.pool.query<{ id: string }>(
    `select r->>'id' as id from snapshot_state, jsonb_array_elements(snapshot->'routes') r
      where tenant_id = $1`,
    [tenantId],
  );
  return rows.map((row) => row.id).sort();
}

async function parked(): Promise<Array<[bigint, string | null, string]>> {
  const { rows } = await database.pool.query<{ position: string; tenant_id: string | null; reason: string }>(
    'select position, tenant_id, reason from projection_parked_events where projection = $1 order by position',
    [SNAPSHOT_PROJECTION],
  );
  return rows.map((row) => [BigInt(row.position), row.tenant_id, row.reason]);
}

describe('the snapshot projector and an event its batch cannot apply', () => {
  it('quarantines that tenant’s snapshot, keeps the others moving, and a refold after the fix brings it back', async () => {
    await append(streamName.tenant(a), tenantCreated(a, 'A'));
    await append(streamName.origin(aOrigin.origin_id), newEvent('OriginCreated', aOrigin));
    const broken = await appendRoute(brokenRoute, a);
    const aLater = routeState(a, aOrigin.origin_id, { path_pattern: '/later/*' });
    const later = await appendRoute(aLater);
    const { route: bRoute, position: head } = await appendTenantWithRoute(b, 'B');

    const projector = startProjector();
    try {
      await until('snapshots folded', async () => (await readSnapshotsPosition(database.pool)) >= head);
      expect(await routesOf(b)).toEqual([bRoute.route_id]);
      expect(await routesOf(a)).toEqual([]);
      expect(await parked()).toEqual([
        [broken, a, 'failed'],
        [later, a, 'quarantined'],
      ]);

      // Still broken: the refold parks them again.
      expect(await refoldSnapshots({ store, pool: database.pool })).toMatchObject({ parkedEvents: 2 });
      expect(await parked()).toEqual([
        [broken, a, 'failed'],
        [later, a, 'quarantined'],
      ]);

      // Fixed: the refold applies them, and the running projector applies A's new events.
      expect(await refoldSnapshots({ store: fixedStore, pool: database.pool })).toMatchObject({
        parkedEvents: 0,
        position: head,
      });
      expect(await parked()).toEqual([]);
      expect(await routesOf(a)).toEqual([brokenRoute.route_id, aLater.route_id].sort());
      const aNew = routeState(a, aOrigin.origin_id, { path_pattern: '/new/*' });
      const appended = await appendRoute(aNew);
      await until('new route folded', async () => (await readSnapshotsPosition(database.pool)) >= appended);
      expect(await routesOf(a)).toContain(aNew.route_id);
      expect(await parked()).toEqual([]);
      await projector.idle();
      const { rows } = await database.pool.query<{ pending: string }>(
        'select count(*) as pending from snapshot_state where published_version is distinct from version',
      );
      expect(rows[0]?.pending).toBe('0');
    } finally {
      await projector.stop();
    }
  });

  it('quarantines a tenant whose event its fold refuses, instead of folding the tenant’s later events over the gap', async () => {
    const c = randomUUID();
    const d = randomUUID();
    const { origin: cOrigin, route: cRoute } = await appendTenantWithRoute(c, 'C');
    // A rate limit the snapshot schema refuses (a member it does not know), its refusal quoting the
    // member's name, which reads like node-postgres' message for a lost connection.
    const limited = {
      ...cRoute,
      rate_limit: { requests_per_second: 5, 'Connection terminated unexpectedly': true },
      changed_fields: ['rate_limit'],
    };
    const refused = await append(
      streamName.route(cRoute.route_id),
      newEvent('RouteUpdated', limited as never),
    );
    const cLater = routeState(c, cOrigin.origin_id, { path_pattern: '/later/*' });
    const later = await appendRoute(cLater);
    const { route: dRoute, position: head } = await appendTenantWithRoute(d, 'D');

    const projector = startProjector();
    try {
      await until('snapshots folded', async () => (await readSnapshotsPosition(database.pool)) >= head);
      expect(await routesOf(d)).toEqual([dRoute.route_id]);
      // C's gateways keep the config from before the refused change, and C shows as quarantined.
      expect(await routesOf(c)).toEqual([cRoute.route_id]);
      expect((await parked()).filter(([position]) => position >= refused)).toEqual([
        [refused, c, 'failed'],
        [later, c, 'quarantined'],
      ]);
    } finally {
      await projector.stop();
    }
  });

  it('still deletes a quarantined tenant: its tombstone reaches the gateways', async () => {
    const e = randomUUID();
    const { origin: eOrigin } = await appendTenantWithRoute(e, 'E');
    const broken = await appendRoute({ ...routeState(e, eOrigin.origin_id), tenant_id: 'not-a-uuid' }, e);
    const deleted = await append(streamName.tenant(e), newEvent('TenantDeleted', { tenant_id: e }));

    const bus = createInMemorySnapshotBus();
    const projector = startProjector(bus);
    try {
      await until('snapshots folded', async () => (await readSnapshotsPosition(database.pool)) >= deleted);
      await projector.idle();
      expect((await parked()).filter(([position]) => position >= broken)).toEqual([[broken, e, 'failed']]);
      const { rows } = await database.pool.query<{ status: string; version: string; published: string }>(
        'select status, version, published_version as published from snapshot_state where tenant_id = $1',
        [e],
      );
      expect(rows).toEqual([
        { status: 'deleted', version: deleted.toString(), published: deleted.toString() },
      ]);
    } finally {
      await projector.stop();
    }
  });
});
