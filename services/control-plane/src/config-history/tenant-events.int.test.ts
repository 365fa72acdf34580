import { randomUUID } from 'node:crypto';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
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
  streamName,
} from '@vantageedge/shared/domain/events';
import { createEventStore } from '@vantageedge/shared/event-store/factory';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { foldTenantConfig, toTenantConfig } from './tenant-config.js';
import { readTenantEvents } from './tenant-events.js';

/**
 * The config of a tenant at every position of a log shared with another tenant, read through the
 * audit log's stream index plus the unindexed tail, equals the snapshot projector's fold of the whole
 * log up to that position.
 */

let db: TestDatabase;
let store: EventStore;
const tenantA = randomUUID();
const tenantB = randomUUID();

async function append(stream: string, event: ControlPlaneNewEvent) {
  await store.appendToStream(stream, [event]);
}

/** The reference: the projector's fold over every event of the log up to `position`. */
async function referenceAt(tenantId: string, position: bigint) {
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

beforeAll(async () => {
  db = await createTestDatabase();
  store = createEventStore({ kind: 'postgres', pool: db.pool });
  const originA = originState(tenantA);
  const originB = originState(tenantB);
  const users = routeState(tenantA, originA.origin_id, { path_pattern: '/users/*' });
  const posts = routeState(tenantA, originA.origin_id, { path_pattern: '/posts/*', methods: ['GET'] });
  const keyId = randomUUID();

  await append(streamName.tenant(tenantA), tenantCreated(tenantA, 'A'));
  await append(streamName.tenant(tenantB), tenantCreated(tenantB, 'B'));
  await append(streamName.origin(originA.origin_id), newEvent('OriginCreated', originA));
  await append(streamName.origin(originB.origin_id), newEvent('OriginCreated', originB));
  await append(streamName.route(users.route_id), newEvent('RouteCreated', users));
  await append(streamName.route(posts.route_id), newEvent('RouteCreated', posts));
  await append(streamName.apiKey(keyId), apiKeyIssued(tenantA, keyId));
  await append(
    streamName.route(users.route_id),
    newEvent('RouteUpdated', {
      ...users,
      rate_limit: {
        algorithm: 'token_bucket',
        requests_per_second: 5,
        scope: 'route',
        accuracy: 'exact',
        on_store_failure: 'open',
      },
      changed_fields: ['rate_limit'],
    }),
  );
  await append(
    streamName.route(posts.route_id),
    newEvent('RouteDeleted', { route_id: posts.route_id, tenant_id: tenantA }),
  );

  // The read models index everything so far; then the projector stops and the log moves on.
  const projector = startReadModelProjector({ store, pool: db.pool });
  const head = await store.headPosition();
  for (let waited = 0; (await readReadModelsPosition(db.pool)) < head; waited += 20) {
    if (waited > 20_000) throw new Error('the read-model projector did not catch up');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await projector.stop();

  const late = routeState(tenantA, originA.origin_id, { path_pattern: '/late/*' });
  await append(streamName.route(late.route_id), newEvent('RouteCreated', late));
  await append(
    streamName.apiKey(keyId),
    newEvent('ApiKeyRevoked', { api_key_id: keyId, tenant_id: tenantA, reason: null }),
  );
  await append(
    streamName.route(users.route_id),
    newEvent('RouteDeleted', { route_id: users.route_id, tenant_id: tenantA }),
  );
  await append(streamName.tenant(tenantB), newEvent('TenantDeleted', { tenant_id: tenantB }));
}, 60_000);

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

describe('a tenant config at a position', () => {
  it('equals the projector fold of the whole log at every position, indexed or not yet indexed', async () => {
    const head = await store.headPosition();
    const checkpoint = await readReadModelsPosition(db.pool);
    expect(checkpoint).toBeLessThan(head);
    for (const tenantId of [tenantA, tenantB]) {
      for (let position = 0n; position <= head; position++) {
        const read = foldTenantConfig(await readTenantEvents({ store, pool: db.pool }, tenantId, position));
        expect(read, `tenant ${tenantId === tenantA ? 'A' : 'B'} at ${position}`).toEqual(
          await referenceAt(tenantId, position),
        );
      }
    }
  });

  it('between two positions: exactly the tenant’s events in that range, indexed or not yet indexed', async () => {
    const head = await store.headPosition();
    const log = await store.readAll();
    for (const tenantId of [tenantA, tenantB]) {
      const ofTenant = log.filter(
        (event) => isControlPlaneEvent(event) && snapshotTenantOf(event) === tenantId,
      );
      for (let after = 0n; after <= head; after++) {
        for (let upTo = after; upTo <= head; upTo++) {
          const read = await readTenantEvents({ store, pool: db.pool }, tenantId, upTo, after);
          expect(
            read.map((event) => event.position),
            `${after} < position <= ${upTo}`,
          ).toEqual(
            ofTenant
              .filter((event) => event.position > after && event.position <= upTo)
              .map((event) => event.position),
          );
        }
      }
    }
  });

  it('holds only the given tenant’s events, never a key hash in the config', async () => {
    const head = await store.headPosition();
    const events = await readTenantEvents({ store, pool: db.pool }, tenantA, head);
    expect(events.every((event) => snapshotTenantOf(event) === tenantA)).toBe(true);
    const positions = events.map((event) => event.position);
    expect(positions).toEqual([...positions].sort((a, b) => (a < b ? -1 : 1)));
    const withKey = foldTenantConfig(events.filter((event) => event.type !== 'ApiKeyRevoked'));
    expect(JSON.stringify(withKey)).not.toContain('key_hash');
    expect(withKey.status === 'live' && withKey.config.api_keys).toHaveLength(1);
  });

  it('is absent before the tenant was created and deleted after it was deleted', async () => {
    const head = await store.headPosition();
    expect(foldTenantConfig(await readTenantEvents({ store, pool: db.pool }, tenantB, 1n))).toEqual({
      status: 'absent',
    });
    expect(foldTenantConfig(await readTenantEvents({ store, pool: db.pool }, tenantB, head))).toMatchObject({
      status: 'deleted',
      version: head.toString(),
    });
  });
});
