import { randomUUID } from 'node:crypto';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import { newEvent, originState, routeState, tenantCreated } from '@vantageedge/projections/snapshots/testing';
import { type ControlPlaneNewEvent, streamName } from '@vantageedge/shared/domain/events';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore, RecordedEvent } from '@vantageedge/shared/event-store/port';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../domain/errors.js';
import { createConfigReadBudget, useConfigReadBudget } from './config-read-budget.js';
import { tenantConfigAt } from './tenant-config.js';
import { createTenantFoldCache } from './tenant-folds.js';

/**
 * How much of the event log one config read may go through, against the real PostgreSQL event store:
 * a tenant with a long history (one route changed thousands of times) and a log that moved on past the
 * read models (another tenant's thousands of events the audit log does not index yet). A read holds one
 * page of events at a time, and one under a read limit stops at it with 503 `read_limit_exceeded`,
 * keeping what it folded so that the same request sent again goes on from there.
 */

const CHANGES = 2_600;
const OTHER_TENANT_EVENTS = 2_600;
const PAGE_EVENTS = 1_000;

let db: TestDatabase;
let store: EventStore;
const tenant = randomUUID();
const other = randomUUID();
let indexedHead: bigint;
let head: bigint;

/** The store, counting the events each read answers. */
function countingStore(real: EventStore) {
  const reads: number[] = [];
  const counted = async (read: Promise<RecordedEvent[]>) => {
    const events = await read;
    reads.push(events.length);
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
    total: () => reads.reduce((sum, count) => sum + count, 0),
    largest: () => Math.max(0, ...reads),
  };
}

/** A source of its own (no fold kept from another test), reading through `counting`. */
function sourceOf(counting: ReturnType<typeof countingStore>, maxEventsRead?: number) {
  return {
    store: counting.store,
    pool: db.pool,
    folds: createTenantFoldCache(),
    ...(maxEventsRead !== undefined ? { maxEventsRead } : {}),
  };
}

async function appendMany(stream: string, events: ControlPlaneNewEvent[]) {
  for (let start = 0; start < events.length; start += 500) {
    await store.appendToStream(stream, events.slice(start, start + 500));
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  store = createEventStore({ kind: 'postgres', pool: db.pool });
  const origin = originState(tenant);
  const route = routeState(tenant, origin.origin_id, { path_pattern: '/users/*' });
  await store.appendToStream(streamName.tenant(tenant), [tenantCreated(tenant, 'long history')]);
  await store.appendToStream(streamName.origin(origin.origin_id), [newEvent('OriginCreated', origin)]);
  await store.appendToStream(streamName.route(route.route_id), [newEvent('RouteCreated', route)]);
  await appendMany(
    streamName.route(route.route_id),
    Array.from({ length: CHANGES }, (_, n) =>
      newEvent('RouteUpdated', {
        ...route,
        path_pattern: `/users/v${n}/*`,
        changed_fields: ['path_pattern'],
      }),
    ),
  );

  // The read models index all of it; then their projector stops and the log moves on without them.
  const projector = startReadModelProjector({ store, pool: db.pool });
  indexedHead = await store.headPosition();
  for (let waited = 0; (await readReadModelsPosition(db.pool)) < indexedHead; waited += 50) {
    if (waited > 120_000) throw new Error('the read-model projector did not catch up');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await projector.stop();

  const otherOrigin = originState(other);
  await store.appendToStream(streamName.tenant(other), [tenantCreated(other, 'busy neighbour')]);
  await appendMany(
    streamName.origin(otherOrigin.origin_id),
    [newEvent('OriginCreated', otherOrigin)].concat(
      Array.from({ length: OTHER_TENANT_EVENTS - 1 }, (_, n) =>
        newEvent('OriginUpdated', { ...otherOrigin, name: `api-${n}`, changed_fields: ['name'] }),
      ),
    ),
  );
  head = await store.headPosition();
}, 300_000);

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

/** The config the tenant's routes had: the path pattern of its one route. */
async function routePatternAt(position: bigint, maxEventsRead?: number) {
  const at = await tenantConfigAt(sourceOf(countingStore(store), maxEventsRead), tenant, position);
  return at.status === 'live' ? at.config.routes.map((route) => route.path_pattern) : at.status;
}

describe('a config read of a tenant with a long history', () => {
  it('holds at most a page of events at a time, however many the tenant has', async () => {
    const counting = countingStore(store);
    const at = await tenantConfigAt(sourceOf(counting), tenant, indexedHead);
    expect(at.status === 'live' && at.config.routes.map((route) => route.path_pattern)).toEqual([
      `/users/v${CHANGES - 1}/*`,
    ]);
    expect(counting.total()).toBeGreaterThan(CHANGES);
    expect(counting.largest()).toBeLessThanOrEqual(PAGE_EVENTS);
  });

  it('stops at the read limit with 503 read_limit_exceeded naming it, having read no more than it', async () => {
    const counting = countingStore(store);
    const error = await tenantConfigAt(sourceOf(counting, 1_000), tenant, indexedHead).then(
      () => null,
      (failure: unknown) => failure,
    );
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({
      kind: 'unavailable',
      code: 'read_limit_exceeded',
      retryAfterSeconds: 1,
      issues: [{ field: 'config_read_max_events', issue: 'at most 1000 events read per config' }],
    });
    expect(counting.total()).toBeLessThanOrEqual(1_000);
  });

  it('sent again, goes on from where it stopped, to the exact config', async () => {
    const counting = countingStore(store);
    const source = sourceOf(counting, 1_000);
    const attempts: string[] = [];
    let answer: Awaited<ReturnType<typeof tenantConfigAt>> | undefined;
    while (answer === undefined && attempts.length < 10) {
      answer = await tenantConfigAt(source, tenant, indexedHead).catch((error: unknown) => {
        attempts.push((error as DomainError).code ?? String(error));
        return undefined;
      });
    }
    // 2,603 events, at most 1,000 read per request: the third request finishes the fold.
    expect(attempts).toEqual(['read_limit_exceeded', 'read_limit_exceeded']);
    expect(answer?.status === 'live' && answer.config.routes.map((route) => route.path_pattern)).toEqual(
      await routePatternAt(indexedHead),
    );
    expect(counting.total()).toBeLessThanOrEqual(3 * 1_000);
  });

  it('reads no more than the limit of a log the read models do not index yet', async () => {
    // Folded up to the read models' checkpoint: what is left is another tenant's 2,600 events.
    const counting = countingStore(store);
    const source = sourceOf(counting, 1_000);
    const folds = source.folds;
    await tenantConfigAt({ ...source, maxEventsRead: undefined }, tenant, indexedHead);
    counting.reads.length = 0;
    await expect(tenantConfigAt({ ...source, folds }, tenant, head)).rejects.toMatchObject({
      code: 'read_limit_exceeded',
    });
    // The limit, and one event more that says there is more.
    expect(counting.total()).toBeLessThanOrEqual(1_000 + 1);
    expect(counting.largest()).toBeLessThanOrEqual(PAGE_EVENTS);
  });

  it('charges the events it folds to the tenant’s config read budget: spent, it stops with 429 and later goes on', async () => {
    const counting = countingStore(store);
    const source = { ...sourceOf(counting), chargedToReadBudget: true };
    // Less than a page of events a minute (MIN_FOLDED_EVENT_BYTES each), the clock standing still.
    useConfigReadBudget(counting.store, createConfigReadBudget({ bytesPerMinute: 50_000, now: () => 0 }));
    await expect(tenantConfigAt(source, tenant, indexedHead)).rejects.toMatchObject({
      kind: 'rate_limited',
      code: 'admin_rate_limited',
      issues: [{ field: 'tenant_config_read_bytes_per_minute' }],
    });
    // Stopped once the budget was spent, long before the tenant's 2,603 events.
    expect(counting.total()).toBeLessThanOrEqual(PAGE_EVENTS);

    // A minute later, the budget refilled.
    useConfigReadBudget(counting.store, createConfigReadBudget());
    const answer = await tenantConfigAt(source, tenant, indexedHead);
    expect(answer.status === 'live' && answer.config.routes.map((route) => route.path_pattern)).toEqual(
      await routePatternAt(indexedHead),
    );
    // Went on from where it stopped: every event read once.
    expect(counting.total()).toBeLessThanOrEqual(CHANGES + 3 + 1);
  });

  it('reads every event without a limit, and the config at a past position is exact', async () => {
    expect(await routePatternAt(head)).toEqual([`/users/v${CHANGES - 1}/*`]);
    expect(await routePatternAt(indexedHead - 1000n)).toEqual([`/users/v${CHANGES - 1001}/*`]);
    expect(await routePatternAt(2n)).toEqual([]);
  });
});
