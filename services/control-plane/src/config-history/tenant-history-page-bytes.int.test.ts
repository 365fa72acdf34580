import { randomUUID } from 'node:crypto';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import { snapshotTenantOf } from '@vantageedge/projections/snapshots/fold';
import { newEvent, originState, routeState, tenantCreated } from '@vantageedge/projections/snapshots/testing';
import {
  type ControlPlaneNewEvent,
  isControlPlaneEvent,
  streamName,
} from '@vantageedge/shared/domain/events';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createConfigReadBudget, useConfigReadBudget } from './config-read-budget.js';
import { tenantConfigAt } from './tenant-config.js';
import { readTenantEvents } from './tenant-events.js';
import { createTenantFoldCache } from './tenant-folds.js';

/**
 * A config read of a tenant whose events are large (a route whose every change names 700 scopes, some
 * 23 KiB of JSON each), against the real PostgreSQL event store: a page of a fold ends after about a
 * mebibyte of events, not after a thousand events (which would be 23 MB read, parsed and held at once),
 * both where the read models index the tenant's events and in the part of the log they do not index yet
 * (another tenant's large events).
 */

const PAGE_BYTES = 1024 * 1024;
const CHANGES = 120;
const SCOPES = 700;

let db: TestDatabase;
let store: EventStore;
const tenant = randomUUID();
const other = randomUUID();
/** A tenant whose large events are spread over routes changed in turn. */
const interleaved = randomUUID();
const INTERLEAVED_ROUTES = 3;
let indexedHead: bigint;
let head: bigint;
let largestEvent = 0;

const storedBytesOf = (events: readonly RecordedEvent[]) =>
  events.reduce((sum, event) => sum + event.storedBytes, 0);

/** The store, counting the stored bytes each read answers. */
function countingStore(real: EventStore) {
  const reads: number[] = [];
  const counted = async (read: Promise<RecordedEvent[]>) => {
    const events = await read;
    reads.push(storedBytesOf(events));
    return events;
  };
  const store: EventStore = {
    ...real,
    appendToStream: (...args) => real.appendToStream(...args),
    readStream: (...args) => counted(real.readStream(...args)),
    readAll: (...args) => counted(real.readAll(...args)),
    subscribeToAll: (...args) => real.subscribeToAll(...args),
    headPosition: () => real.headPosition(),
    reservationHolder: (value) => real.reservationHolder(value),
    close: async () => undefined,
  };
  return {
    store,
    reads,
    total: () => reads.reduce((sum, bytes) => sum + bytes, 0),
    largest: () => Math.max(0, ...reads),
  };
}

function sourceOf(counting: ReturnType<typeof countingStore>) {
  return { store: counting.store, pool: db.pool, folds: createTenantFoldCache() };
}

const scopesOf = (change: number) =>
  Array.from({ length: SCOPES }, (_, n) => `orders:read:${change}:${n}`.padEnd(30, '.'));

async function appendMany(stream: string, events: ControlPlaneNewEvent[]) {
  for (let start = 0; start < events.length; start += 40) {
    await store.appendToStream(stream, events.slice(start, start + 40));
  }
}

async function routeScopesAt(position: bigint): Promise<string[][]> {
  const at = await tenantConfigAt(sourceOf(countingStore(store)), tenant, position);
  return at.status === 'live' ? at.config.routes.map((route) => route.required_scopes) : [];
}

beforeAll(async () => {
  db = await createTestDatabase();
  store = createEventStore({ kind: 'postgres', pool: db.pool });
  const origin = originState(tenant);
  const route = routeState(tenant, origin.origin_id, { path_pattern: '/orders/*' });
  await store.appendToStream(streamName.tenant(tenant), [tenantCreated(tenant, 'large events')]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
  await appendMany(
    streamName.route(route.route_id),
    Array.from({ length: CHANGES }, (_, change) =>
      newEvent('RouteUpdated', {
        ...route,
        required_scopes: scopesOf(change),
        changed_fields: ['required_scopes'],
      }),
    ),
  );

  const interleavedOrigin = originState(interleaved);
  const routes = Array.from({ length: INTERLEAVED_ROUTES }, (_, n) =>
    routeState(interleaved, interleavedOrigin.origin_id, { path_pattern: `/r${n}/*` }),
  );
  await store.appendToStream(streamName.tenant(interleaved), [tenantCreated(interleaved, 'interleaved')]);
  await store.appendToStream(streamName.origin(interleavedOrigin.origin_id), [
    newEvent('OriginCreated', interleavedOrigin),
  ]);
  for (const route of routes) {
    await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
  }
  for (let change = 0; change < CHANGES / INTERLEAVED_ROUTES; change++) {
    for (const route of routes) {
      await store.appendToStream(streamName.route(route.route_id), [
        newEvent('RouteUpdated', {
          ...route,
          required_scopes: scopesOf(change),
          changed_fields: ['required_scopes'],
        }),
      ]);
    }
  }

  // The read models index all of it; then their projector stops and the log moves on without them.
  const projector = startReadModelProjector({ store, pool: db.pool });
  indexedHead = await store.headPosition();
  for (let waited = 0; (await readReadModelsPosition(db.pool)) < indexedHead; waited += 50) {
    if (waited > 120_000) throw new Error('the read-model projector did not catch up');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await projector.stop();

  const otherOrigin = originState(other);
  await store.appendToStream(streamName.tenant(other), [tenantCreated(other, 'large neighbour')]);
  await appendMany(
    streamName.origin(otherOrigin.origin_id),
    [newEvent('OriginCreated', otherOrigin)].concat(
      Array.from({ length: CHANGES }, (_, change) =>
        newEvent('OriginUpdated', {
          ...otherOrigin,
          name: scopesOf(change).join(','),
          changed_fields: ['name'],
        }),
      ),
    ),
  );
  head = await store.headPosition();
  largestEvent = Math.max(...(await store.readAll()).map((event) => event.storedBytes));
}, 300_000);

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

describe('a config read of a tenant with large events', () => {
  it('reads them about a mebibyte at a time, not a thousand events at a time', async () => {
    expect(largestEvent).toBeGreaterThan(20_000);
    const counting = countingStore(store);
    const at = await tenantConfigAt(sourceOf(counting), tenant, indexedHead);
    expect(at.status === 'live' && at.config.routes.map((route) => route.required_scopes)).toEqual([
      scopesOf(CHANGES - 1),
    ]);
    expect(counting.total()).toBeGreaterThan(2 * PAGE_BYTES);
    expect(counting.largest()).toBeLessThanOrEqual(PAGE_BYTES + largestEvent);
  });

  it('gives every event of a tenant whose large events are spread over several streams once, in log order', async () => {
    const counting = countingStore(store);
    const read = await readTenantEvents(sourceOf(counting), interleaved, indexedHead);
    const log = (await store.readAll({ maxCount: Number(indexedHead) })).filter(
      (event) => isControlPlaneEvent(event) && snapshotTenantOf(event) === interleaved,
    );
    expect(read.map((event) => event.position)).toEqual(log.map((event) => event.position));
    expect(counting.largest()).toBeLessThanOrEqual(PAGE_BYTES + largestEvent);
    // Each page reads about its bytes: the events of the streams past where it ends are read again by
    // the next page, never more than one page's worth.
    expect(counting.total()).toBeLessThanOrEqual(2 * storedBytesOf(log));
  });

  it('is refused by the config read budget after about the budget’s bytes, and later goes on to the exact config', async () => {
    const counting = countingStore(store);
    const source = { ...sourceOf(counting), chargedToReadBudget: true };
    const budgetBytes = 512 * 1024;
    useConfigReadBudget(
      counting.store,
      createConfigReadBudget({ bytesPerMinute: budgetBytes, now: () => 0 }),
    );
    await expect(tenantConfigAt(source, tenant, indexedHead)).rejects.toMatchObject({
      kind: 'rate_limited',
      code: 'admin_rate_limited',
      issues: [{ field: 'tenant_config_read_bytes_per_minute' }],
    });
    // The page that spent the budget, at most: not the tenant's 2.7 MB of events.
    expect(counting.total()).toBeLessThanOrEqual(PAGE_BYTES + largestEvent);

    useConfigReadBudget(counting.store, createConfigReadBudget());
    const answer = await tenantConfigAt(source, tenant, indexedHead);
    expect(answer.status === 'live' && answer.config.routes.map((route) => route.required_scopes)).toEqual([
      scopesOf(CHANGES - 1),
    ]);
  });

  it('reads the part of the log the read models do not index yet about a mebibyte at a time too', async () => {
    const counting = countingStore(store);
    const source = sourceOf(counting);
    await tenantConfigAt(source, tenant, indexedHead);
    counting.reads.length = 0;
    const at = await tenantConfigAt(source, tenant, head);
    expect(at.status === 'live' && at.config.routes.map((route) => route.required_scopes)).toEqual(
      await routeScopesAt(indexedHead),
    );
    // Every byte of the other tenant's events read, a page at a time.
    expect(counting.total()).toBeGreaterThan(2 * PAGE_BYTES);
    expect(counting.largest()).toBeLessThanOrEqual(PAGE_BYTES + largestEvent);
  });
});
