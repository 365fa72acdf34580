import { randomUUID } from 'node:crypto';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import type { Projector } from '@vantageedge/projections/runner/projector';
import {
  foldSnapshotEvent,
  type SnapshotState,
  snapshotTenantOf,
} from '@vantageedge/projections/snapshots/fold';
import {
  apiKeyIssued,
  newEvent,
  originState,
  routeState,
  tenantCreated,
} from '@vantageedge/projections/snapshots/testing';
import {
  type ControlPlaneNewEvent,
  isControlPlaneEvent,
  type RouteState,
  streamName,
} from '@vantageedge/shared/domain/events';
import { tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { explainSnapshotAt } from '../explain/explain-source.js';
import { type TenantConfigAt, tenantConfigAt, toTenantConfig } from './tenant-config.js';
import type { TenantEventSource } from './tenant-events.js';
import { createTenantFoldCache } from './tenant-folds.js';

/**
 * What explain and GET …/config cost in events read from the event store, counted through a wrapper
 * of the port (no timings): the current config is folded on from the last call, so a call after one
 * change reads just that change; a config at an old position reads nothing after it. And the cache
 * never answers with a stale config or another tenant's.
 */

let db: TestDatabase;
let store: EventStore;
let projector: Projector | null = null;
const tenantA = randomUUID();
const tenantB = randomUUID();
const originA = originState(tenantA);
const originB = originState(tenantB);
const routeA = routeState(tenantA, originA.origin_id, { path_pattern: '/a/*' });
const routeB = routeState(tenantB, originB.origin_id, { path_pattern: '/b/*' });
const HISTORY = 60;

/** The event store as the config reads see it, counting every event it hands out. */
function countingStore(inner: EventStore) {
  const read: RecordedEvent[] = [];
  const counted = (events: RecordedEvent[]) => {
    read.push(...events);
    return events;
  };
  const wrapped: EventStore = {
    appendToStream: (stream, events, options) => inner.appendToStream(stream, events, options),
    readStream: async (stream, options) => counted(await inner.readStream(stream, options)),
    readAll: async (options) => counted(await inner.readAll(options)),
    subscribeToAll: (options) => inner.subscribeToAll(options),
    headPosition: () => inner.headPosition(),
    reservationHolder: (value) => inner.reservationHolder(value),
    close: () => inner.close(),
  };
  return {
    store: wrapped,
    /** The positions of the events read since the last call. */
    take(): bigint[] {
      const positions = read.map((event) => event.position);
      read.length = 0;
      return positions;
    },
  };
}

/** A control plane's view: its own cache, its reads counted. */
function controlPlane(checkpointEvents?: number, maxBytes?: number) {
  const counting = countingStore(store);
  const folds = createTenantFoldCache({
    ...(checkpointEvents === undefined ? {} : { checkpointEvents }),
    ...(maxBytes === undefined ? {} : { maxBytes }),
  });
  const source: TenantEventSource = { store: counting.store, pool: db.pool, folds };
  return { source, take: counting.take };
}

async function append(stream: string, event: ControlPlaneNewEvent): Promise<bigint> {
  return (await store.appendToStream(stream, [event])).position;
}

function patchRoute(route: RouteState, i: number) {
  return newEvent('RouteUpdated', {
    ...route,
    request_headers: { set: { 'x-pad': `${'v'.repeat(200)}${i}` }, remove: [] },
    changed_fields: ['request_headers'],
  } as never);
}

async function caughtUp(): Promise<void> {
  const head = await store.headPosition();
  for (let waited = 0; (await readReadModelsPosition(db.pool)) < head; waited += 20) {
    if (waited > 20_000) throw new Error('the read-model projector did not catch up');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The reference: the projector's fold over every event of the log up to `position`. */
async function referenceAt(tenantId: string, position: bigint): Promise<TenantConfigAt> {
  let state: SnapshotState | undefined;
  for (const event of await store.readAll()) {
    if (event.position > position || !isControlPlaneEvent(event)) continue;
    if (snapshotTenantOf(event) === tenantId) state = foldSnapshotEvent(state, event);
  }
  if (state === undefined) return { status: 'absent' };
  if (state.status === 'deleted') {
    return { status: 'deleted', version: state.version.toString(), event_time: state.eventTime };
  }
  return { status: 'live', config: toTenantConfig(state.snapshot) };
}

const routeHeaders = (at: TenantConfigAt) =>
  at.status === 'live' ? at.config.routes.map((route) => route.request_headers?.set?.['x-pad']) : at.status;

beforeAll(async () => {
  db = await createTestDatabase();
  store = createEventStore({ kind: 'postgres', pool: db.pool });
  await append(streamName.tenant(tenantA), tenantCreated(tenantA, 'A'));
  await append(streamName.tenant(tenantB), tenantCreated(tenantB, 'B'));
  await append(streamName.origin(originA.origin_id), newEvent('OriginCreated', originA));
  await append(streamName.origin(originB.origin_id), newEvent('OriginCreated', originB));
  await append(streamName.route(routeA.route_id), newEvent('RouteCreated', routeA));
  await append(streamName.route(routeB.route_id), newEvent('RouteCreated', routeB));
  // A long history of one route, interleaved with the other tenant's changes.
  for (let i = 0; i < HISTORY; i++) {
    await append(streamName.route(routeA.route_id), patchRoute(routeA, i));
    if (i % 10 === 0) await append(streamName.route(routeB.route_id), patchRoute(routeB, i));
  }
  projector = startReadModelProjector({ store, pool: db.pool });
  await caughtUp();
}, 60_000);

afterAll(async () => {
  await projector?.stop();
  await store?.close();
  await db?.drop();
});

describe('explain and the current config fold on from the last call', () => {
  it('a second explain reads no event; after one change, only that event', async () => {
    const { source, take } = controlPlane();
    const head = await store.headPosition();
    const first = await explainSnapshotAt(source, tenantA, head, 'write');
    expect(first.status).toBe('live');
    // The first call reads the tenant's history (once), never another tenant's stream.
    expect(take().length).toBeGreaterThanOrEqual(HISTORY);

    await explainSnapshotAt(source, tenantA, head, 'write');
    expect(take()).toEqual([]);

    const changed = await append(streamName.route(routeA.route_id), patchRoute(routeA, 1000));
    await caughtUp();
    const after = await explainSnapshotAt(source, tenantA, changed, 'write');
    expect(take()).toEqual([changed]);
    expect(after.status === 'live' && after.snapshot.version).toBe(changed.toString());
    expect(after.status === 'live' && after.snapshot.routes[0]?.request_headers?.set?.['x-pad']).toMatch(
      /1000$/,
    );
  });

  it('a change the read models have not indexed yet is read from the log, and only it', async () => {
    const { source, take } = controlPlane();
    await caughtUp();
    await projector?.stop();
    projector = null;
    try {
      const head = await store.headPosition();
      await tenantConfigAt(source, tenantA, head);
      take();
      const changed = await append(streamName.route(routeA.route_id), patchRoute(routeA, 2000));
      const at = await tenantConfigAt(source, tenantA, changed);
      expect(take()).toEqual([changed]);
      expect(at).toEqual(await referenceAt(tenantA, changed));
    } finally {
      projector = startReadModelProjector({ store, pool: db.pool });
      await caughtUp();
    }
  });

  it('parallel explains after a change read that change once', async () => {
    const { source, take } = controlPlane();
    await explainSnapshotAt(source, tenantA, await store.headPosition(), 'write');
    take();
    const changed = await append(streamName.route(routeA.route_id), patchRoute(routeA, 1500));
    await caughtUp();
    const answers = await Promise.all(
      [1, 2, 3, 4].map(() => explainSnapshotAt(source, tenantA, changed, 'write')),
    );
    expect(take()).toEqual([changed]);
    expect(answers.map((at) => at.status === 'live' && at.snapshot.version)).toEqual(
      Array(4).fill(changed.toString()),
    );
  });

  // Regression: every explain decoded the whole snapshot again (≈266 ms for a 13 MB tenant).
  it('explains of an unchanged tenant decode its snapshot once; after a change, once more', async () => {
    const { source } = controlPlane();
    const head = await store.headPosition();
    const parses = vi.spyOn(tenantSnapshot, 'parse');
    try {
      const answers = [];
      for (let i = 0; i < 5; i++) answers.push(await explainSnapshotAt(source, tenantA, head, 'write'));
      expect(parses).toHaveBeenCalledTimes(1);
      expect(new Set(answers.map((at) => at.status === 'live' && at.snapshot)).size).toBe(1);

      const changed = await append(streamName.route(routeA.route_id), patchRoute(routeA, 3000));
      await caughtUp();
      const after = await explainSnapshotAt(source, tenantA, changed, 'write');
      await explainSnapshotAt(source, tenantA, changed, 'write');
      expect(parses).toHaveBeenCalledTimes(2);
      expect(after.status === 'live' && after.snapshot.version).toBe(changed.toString());
    } finally {
      parses.mockRestore();
    }
  });

  it('explain and GET config share the fold: a config after an explain reads nothing', async () => {
    const { source, take } = controlPlane();
    const head = await store.headPosition();
    await explainSnapshotAt(source, tenantA, head, 'write');
    take();
    expect(await tenantConfigAt(source, tenantA, head)).toEqual(await referenceAt(tenantA, head));
    expect(take()).toEqual([]);
  });
});

describe('a config at an old position', () => {
  it('reads no event after that position, with or without a later fold cached', async () => {
    const { source, take } = controlPlane();
    const old = 7n;
    expect(await tenantConfigAt(source, tenantA, old)).toEqual(await referenceAt(tenantA, old));
    const cold = take();
    expect(cold.length).toBeGreaterThan(0);
    expect(cold.every((position) => position <= old)).toBe(true);

    const head = await store.headPosition();
    await tenantConfigAt(source, tenantA, head);
    take();
    expect(await tenantConfigAt(source, tenantA, old)).toEqual(await referenceAt(tenantA, old));
    expect(take().every((position) => position <= old)).toBe(true);
    // …and it did not replace the newer fold: the current config still reads nothing.
    expect(await tenantConfigAt(source, tenantA, head)).toEqual(await referenceAt(tenantA, head));
    expect(take()).toEqual([]);
  });

  it('starts from the nearest checkpoint at or before it: reads only the events after that', async () => {
    const every = 10;
    const { source, take } = controlPlane(every);
    const head = await store.headPosition();
    await tenantConfigAt(source, tenantA, head);
    const history = take().sort((a, b) => (a < b ? -1 : 1));
    // An old position between two checkpoints (the 30th and the 40th event of the tenant).
    const old = history[34]!;
    expect(await tenantConfigAt(source, tenantA, old)).toEqual(await referenceAt(tenantA, old));
    expect(take()).toEqual(history.slice(30, 35));
    expect(await explainSnapshotAt(source, tenantA, old - 1n, 'write')).toMatchObject({ status: 'live' });
    expect(take()).toEqual(history.slice(30, 34));
  });
});

describe('the cache every tenant shares', () => {
  it('one tenant’s folds at old positions do not push another tenant’s fold out', async () => {
    const head = await store.headPosition();
    const bytesOfFold = async (tenantId: string) => {
      const { source } = controlPlane();
      await tenantConfigAt(source, tenantId, head);
      return source.folds?.stats().bytes ?? 0;
    };
    const [bytesA, bytesB] = [await bytesOfFold(tenantA), await bytesOfFold(tenantB)];
    // Room for B's fold and a few of A's, not for A's checkpoint after every second event of its history.
    const { source, take } = controlPlane(2, 2 * bytesB + 6 * bytesA);
    await tenantConfigAt(source, tenantB, head);
    take();

    // A's admin reads A's config at an old position: folded from A's first event, checkpoints kept.
    expect(await tenantConfigAt(source, tenantA, head - 1n)).toEqual(await referenceAt(tenantA, head - 1n));
    take();
    expect(await tenantConfigAt(source, tenantB, head)).toEqual(await referenceAt(tenantB, head));
    expect(take()).toEqual([]);
  });

  it('a tenant’s folds at old positions do not push out its own current fold', async () => {
    const head = await store.headPosition();
    const { source: measuring } = controlPlane();
    await tenantConfigAt(measuring, tenantA, head);
    const bytesA = measuring.folds?.stats().bytes ?? 0;
    // A's share (half) holds its current fold and a few checkpoints, not one after every second event.
    const { source, take } = controlPlane(2, 8 * bytesA);
    await tenantConfigAt(source, tenantA, head);
    take();

    // A's admin reads A's config far back (a diff, a rollback's dry run): checkpoints kept up to there.
    expect(await tenantConfigAt(source, tenantA, head - 30n)).toEqual(await referenceAt(tenantA, head - 30n));
    take();
    // Its next command or current read folds on from its current fold, not from 30 events back.
    expect(await tenantConfigAt(source, tenantA, head)).toEqual(await referenceAt(tenantA, head));
    expect(take()).toEqual([]);
  });
});

describe('the cached fold', () => {
  it('never answers with a stale config or another tenant’s, at any position', async () => {
    const { source } = controlPlane();
    const keyId = randomUUID();
    const steps: Array<() => Promise<bigint>> = [
      () => append(streamName.route(routeA.route_id), patchRoute(routeA, 3000)),
      () => append(streamName.route(routeB.route_id), patchRoute(routeB, 3001)),
      () => append(streamName.apiKey(keyId), apiKeyIssued(tenantA, keyId)),
      () =>
        append(
          streamName.apiKey(keyId),
          newEvent('ApiKeyRevoked', { api_key_id: keyId, tenant_id: tenantA, reason: null }),
        ),
      () =>
        append(
          streamName.route(routeB.route_id),
          newEvent('RouteDeleted', { route_id: routeB.route_id, tenant_id: tenantB }),
        ),
      () => append(streamName.tenant(tenantB), newEvent('TenantDeleted', { tenant_id: tenantB })),
    ];
    for (const step of steps) {
      const position = await step();
      for (const tenantId of [tenantA, tenantB]) {
        const expected = await referenceAt(tenantId, position);
        expect(await tenantConfigAt(source, tenantId, position)).toEqual(expected);
        // An older position in between, then the head again: still exact.
        expect(await tenantConfigAt(source, tenantId, position - 3n)).toEqual(
          await referenceAt(tenantId, position - 3n),
        );
        expect(routeHeaders(await tenantConfigAt(source, tenantId, position))).toEqual(
          routeHeaders(expected),
        );
      }
    }
    const revoked = await explainSnapshotAt(source, tenantA, await store.headPosition(), 'write');
    expect(revoked.status === 'live' && revoked.snapshot.api_keys).toEqual([]);
  });
});
