import { randomUUID } from 'node:crypto';
import { CONTROL_PLANE_UPCASTERS } from '@vantageedge/shared/domain/event-upcasters';
import { streamName } from '@vantageedge/shared/domain/events';
import type { NewEvent, RecordedEvent } from '@vantageedge/shared/event-store/port';
import {
  PostgresEventStore,
  type PostgresEventStoreOptions,
} from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { newEvent, originState, routeState, tenantCreated } from '../snapshots/testing.js';
import { startReadModelProjector } from './projector.js';
import { replayReadModels } from './replay.js';
import { READ_MODELS_PROJECTION } from './schema.js';

/**
 * Regression test: one tenant's event that the read-model fold cannot apply (here an OriginCreated
 * whose `targets` is null: `targets[0]` throws) stopped the read models and the audit log of every
 * tenant: the projector retried the batch forever. Now the tenant is quarantined in the read models
 * (the event and its later ones parked) and every other tenant's events keep showing up; a replay
 * clears the quarantine, so a fixed fold gets the tenant back (and a still broken one parks again).
 */
let database: TestDatabase;
let store: PostgresEventStore;
/** The same log read through the fix: an upcaster that gives the broken origin its targets. */
let fixedStore: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  // The fix, as an upcaster would ship it: the broken origin reads with targets.
  const fix = (event: RecordedEvent): RecordedEvent => {
    const data = event.data as { targets?: unknown; tenant_id: string };
    return event.type === 'OriginCreated' && data.targets === null
      ? { ...event, data: { ...data, targets: originState(data.tenant_id).targets } }
      : event;
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

const a = randomUUID();
const b = randomUUID();
const brokenOrigin = { ...originState(a), targets: null };
let broken: bigint;

async function append(stream: string, event: NewEvent): Promise<bigint> {
  return (await store.appendToStream(stream, [event])).position;
}

async function appendRoute(tenantId: string, originId: string): Promise<{ id: string; position: bigint }> {
  const route = routeState(tenantId, originId, { path_pattern: `/r${randomUUID().slice(0, 8)}/*` });
  return {
    id: route.route_id,
    position: await append(streamName.route(route.route_id), newEvent('RouteCreated', route)),
  };
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const caughtUp = (position: bigint) =>
  until(
    `read models at ${position}`,
    async () => (await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) >= position,
  );

async function ids(table: 'routes' | 'origins' | 'tenants'): Promise<Set<string>> {
  const { rows } = await database.pool.query<{ id: string }>(`select id from read_models.${table}`);
  return new Set(rows.map((row) => row.id));
}

async function parked(): Promise<
  Array<{ position: bigint; tenant_id: string | null; event_type: string; error: string }>
> {
  const { rows } = await database.pool.query<{
    position: string;
    tenant_id: string | null;
    event_type: string;
    error: string;
  }>(
    `select position, tenant_id, event_type, error from projection_parked_events
      where projection = $1 order by position`,
    [READ_MODELS_PROJECTION],
  );
  return rows.map((row) => ({ ...row, position: BigInt(row.position) }));
}

describe('the read-model projector and an event the fold cannot apply', () => {
  let aRoute: { id: string; position: bigint };
  let bRoute: { id: string; position: bigint };
  let aLive: { id: string; position: bigint };

  it('quarantines that tenant in the read models; the other tenants’ events keep showing up', async () => {
    await append(streamName.tenant(a), tenantCreated(a, 'A'));
    await append(streamName.tenant(b), tenantCreated(b, 'B'));
    broken = await append(
      streamName.origin(brokenOrigin.origin_id),
      newEvent('OriginCreated', brokenOrigin as never),
    );
    aRoute = await appendRoute(a, brokenOrigin.origin_id);
    const bOrigin = originState(b);
    await append(streamName.origin(bOrigin.origin_id), newEvent('OriginCreated', bOrigin));
    bRoute = await appendRoute(b, bOrigin.origin_id);

    const projector = startReadModelProjector({ store, pool: database.pool });
    try {
      await caughtUp(bRoute.position);
      // Live, after the quarantine: B's new tenant shows up, A's new route is parked.
      const c = randomUUID();
      aLive = await appendRoute(a, brokenOrigin.origin_id);
      const cCreated = await append(streamName.tenant(c), tenantCreated(c, 'C'));
      await caughtUp(cCreated);

      expect(await ids('tenants')).toEqual(new Set([a, b, c]));
      expect(await ids('origins')).toEqual(new Set([bOrigin.origin_id]));
      expect(await ids('routes')).toEqual(new Set([bRoute.id]));
      const rows = await parked();
      expect(
        rows.map(({ position, tenant_id, event_type }) => ({ position, tenant_id, event_type })),
      ).toEqual([
        { position: broken, tenant_id: a, event_type: 'OriginCreated' },
        { position: aRoute.position, tenant_id: a, event_type: 'RouteCreated' },
        { position: aLive.position, tenant_id: a, event_type: 'RouteCreated' },
      ]);
      expect(rows[0]?.error).toMatch(/Cannot read properties of null/);
      // A's audit log stops before the bad event, like the rest of its read models.
      const { rows: audit } = await database.pool.query<{ position: string }>(
        'select position from read_models.audit_log where tenant_id = $1 order by position',
        [a],
      );
      expect(audit.every((row) => BigInt(row.position) < broken)).toBe(true);
    } finally {
      await projector.stop();
    }
  });

  it('a replay clears the quarantine: a still broken fold parks again, a fixed one gets the tenant back', async () => {
    const stillBroken = await replayReadModels({ store, pool: database.pool });
    expect(stillBroken.swapped).toBe(true);
    expect((await parked()).map((row) => [row.position, row.tenant_id])).toEqual([
      [broken, a],
      [aRoute.position, a],
      [aLive.position, a],
    ]);
    expect((await ids('routes')).has(aRoute.id)).toBe(false);

    // The fixed projector runs while the replay swaps the rebuilt read models in: it reloads the
    // (now empty) quarantine and applies A's events again.
    const projector = startReadModelProjector({ store: fixedStore, pool: database.pool });
    try {
      const parkedLive = await appendRoute(a, brokenOrigin.origin_id);
      await caughtUp(parkedLive.position);
      expect((await parked()).at(-1)?.position).toBe(parkedLive.position);

      const fixed = await replayReadModels({ store: fixedStore, pool: database.pool });
      expect(fixed.swapped).toBe(true);
      expect(await parked()).toEqual([]);
      expect(await ids('origins')).toContain(brokenOrigin.origin_id);
      for (const id of [aRoute.id, parkedLive.id, bRoute.id])
        expect((await ids('routes')).has(id)).toBe(true);

      const applied = await appendRoute(a, brokenOrigin.origin_id);
      await caughtUp(applied.position);
      expect((await ids('routes')).has(applied.id)).toBe(true);
      expect(await parked()).toEqual([]);
    } finally {
      await projector.stop();
    }
  });

  it('still deletes a quarantined tenant, live and in a replay', async () => {
    const d = randomUUID();
    await append(streamName.tenant(d), tenantCreated(d, 'D'));
    const dBroken = { ...originState(d), targets: null };
    const brokenD = await append(
      streamName.origin(dBroken.origin_id),
      newEvent('OriginCreated', dBroken as never),
    );
    const deleted = await append(streamName.tenant(d), newEvent('TenantDeleted', { tenant_id: d }));
    const deletedAt = async () => {
      const { rows } = await database.pool.query<{ deleted_at: Date | null }>(
        'select deleted_at from read_models.tenants where id = $1',
        [d],
      );
      return rows[0]?.deleted_at ?? null;
    };
    const parkedOfD = async () =>
      (await parked()).filter((row) => row.tenant_id === d).map((row) => row.position);

    const projector = startReadModelProjector({ store, pool: database.pool });
    try {
      await caughtUp(deleted);
      expect(await parkedOfD()).toEqual([brokenD]);
      expect(await deletedAt()).not.toBeNull();
    } finally {
      await projector.stop();
    }
    expect((await replayReadModels({ store, pool: database.pool })).swapped).toBe(true);
    expect(await parkedOfD()).toEqual([brokenD]);
    expect(await deletedAt()).not.toBeNull();
  });
});
