import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { startProjector } from '../runner/projector.js';
import { originState } from '../snapshots/testing.js';
import { applyEvents } from './apply-events.js';
import { startReadModelProjector } from './projector.js';
import { replayReadModels } from './replay.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';
import { eventually, rowCounts, tableDifferences } from './testing/compare.js';
import { appendWorkload } from './testing/workload.js';

let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
});

afterAll(async () => {
  await store.close();
  await database.drop();
});

const checkpoint = () => readCheckpoint(database.pool, READ_MODELS_PROJECTION);

async function equalsFreshReplay(): Promise<void> {
  const rebuilt = await replayReadModels({ store, pool: database.pool, swap: false });
  try {
    expect(await tableDifferences(database.pool, READ_MODELS_SCHEMA, rebuilt.schema)).toEqual({});
  } finally {
    await database.pool.query(`drop schema ${rebuilt.schema} cascade`);
  }
}

describe('read-model projector (PostgreSQL event store)', () => {
  it('catches up from position 0, folds every event once, and keeps following live', async () => {
    const { events, position } = await appendWorkload(store, { events: 800, seed: 7 });
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 50 });
    try {
      await eventually(async () => (await checkpoint()) === position);
      const counts = await rowCounts(database.pool, READ_MODELS_SCHEMA);
      expect(counts.audit_log).toBe(events);
      expect(counts.tenants).toBeGreaterThan(0);
      expect(counts.routes).toBeGreaterThan(0);

      const { rows: leaks } = await database.pool.query(
        `select position from read_models.audit_log where data::text like '%key_hash%'`,
      );
      expect(leaks).toEqual([]);

      // live: an event appended after catch-up shows up
      const tenantId = randomUUID();
      const appended = await store.appendToStream(streamName.tenant(tenantId), [
        {
          type: 'TenantCreated',
          data: {
            tenant_id: tenantId,
            name: 'live',
            subdomain: 'live',
            clerk_org_id: null,
            settings: {
              rate_limit: null,
              oidc: null,
              service_jwks: [],
              custom_domains: [],
            },
          },
          metadata: {
            actor: 'user_admin',
            tenant_id: tenantId,
            correlation_id: 'req-live',
            causation_id: null,
            occurred_at: '2026-03-01T10:00:00.000Z',
            schema_version: 1,
          },
        },
      ]);
      await eventually(async () => (await checkpoint()) === appended.position);
      const { rows } = await database.pool.query(
        'select name, revision, position, created_at from read_models.tenants where id = $1',
        [tenantId],
      );
      expect(rows).toEqual([
        {
          name: 'live',
          revision: '0',
          position: appended.position.toString(),
          created_at: new Date('2026-03-01T10:00:00.000Z'),
        },
      ]);
    } finally {
      await projector.stop();
    }
    await equalsFreshReplay();
  });

  it('keeps deleted tenants with deleted_at, and rotated/revoked keys with their dates', async () => {
    const { rows: deleted } = await database.pool.query(
      `select t.deleted_at, a.occurred_at from read_models.tenants t
         join read_models.audit_log a on a.resource_id = t.id::text and a.event_type = 'TenantDeleted'
        where t.deleted_at is not null`,
    );
    expect(deleted.length).toBeGreaterThan(0);
    for (const row of deleted) expect(row.deleted_at).toEqual(row.occurred_at);

    const { rows: rotated } = await database.pool.query(
      `select k.expires_at, k.replaced_by, n.id as new_id from read_models.api_keys k
         join read_models.api_keys n on n.id = k.replaced_by`,
    );
    expect(rotated.length).toBeGreaterThan(0);
    for (const row of rotated)
      expect(row.expires_at.getTime()).toBeLessThanOrEqual(Date.parse('2026-06-01T00:00:00Z'));

    const { rows: revoked } = await database.pool.query(
      `select revoked_at, revoke_reason from read_models.api_keys where revoked_at is not null`,
    );
    expect(revoked.length).toBeGreaterThan(0);
    expect(revoked.every((row) => row.revoke_reason === 'leaked')).toBe(true);
  });

  it('marks the users, origins, routes, keys and certificates of deleted tenants, and only theirs', async () => {
    for (const table of ['users', 'origins', 'routes', 'api_keys', 'certificates']) {
      const { rows } = await database.pool.query<{ deleted: boolean; marked: boolean; rows: number }>(
        `select t.deleted_at is not null as deleted, r.tenant_deleted as marked, count(*)::int as rows
           from read_models.${table} r join read_models.tenants t on t.id = r.tenant_id
          group by 1, 2`,
      );
      for (const row of rows) expect(row.marked, `${table}: ${JSON.stringify(row)}`).toBe(row.deleted);
    }
    const { rows: marked } = await database.pool.query<{ rows: number }>(
      `select count(*)::int as rows from read_models.api_keys where tenant_deleted`,
    );
    expect(marked[0]?.rows).toBeGreaterThan(0);
  });

  it('rolls a failed batch back whole and retries it: nothing applied twice, nothing skipped', async () => {
    const before = await checkpoint();
    const { events, position } = await appendWorkload(store, { events: 300, seed: 8 });
    let failures = 0;
    const errors: string[] = [];
    const projector = startProjector({
      projection: {
        name: READ_MODELS_PROJECTION,
        handle: async (batch, { client }) => {
          await applyEvents(client, READ_MODELS_SCHEMA, batch);
          // Fail after the writes, before the commit: the worst moment. The connection is lost
          // (57P01, transient): the batch is retried whole (an error of the event's own would be
          // tried alone, and parked after 3 attempts: runner/quarantine.int.test.ts).
          if (failures < 3 && batch.some((event) => event.position > before + 100n)) {
            failures += 1;
            throw Object.assign(new Error('simulated crash before commit'), { code: '57P01' });
          }
        },
      },
      store,
      pool: database.pool,
      batchSize: 40,
      retryDelayMs: 1,
      logger: { info() {}, warn() {}, error: (message) => errors.push(message) },
    });
    try {
      await eventually(async () => (await checkpoint()) === position);
    } finally {
      await projector.stop();
    }
    expect(failures).toBe(3);
    expect(errors).toHaveLength(3);
    const { rows } = await database.pool.query<{ count: string }>(
      'select count(*) as count from read_models.audit_log where position > $1',
      [before.toString()],
    );
    expect(Number(rows[0]?.count)).toBe(events);
    await equalsFreshReplay();
  });
  it('writes each audit entry with the latest occurred_at up to its position, across batches', async () => {
    const before = await checkpoint();
    // Stamped out of order, as control planes with skewed clocks or slow commands stamp them.
    const stamps = [
      '2026-04-01T10:00:00Z',
      '2026-04-01T09:00:00Z',
      '2026-04-01T11:00:00Z',
      '2026-03-01T00:00:00Z',
    ];
    let position = before;
    for (const [i, occurredAt] of stamps.entries()) {
      const tenantId = randomUUID();
      ({ position } = await store.appendToStream(streamName.tenant(tenantId), [
        {
          type: 'TenantCreated',
          data: {
            tenant_id: tenantId,
            name: `stamped ${i}`,
            subdomain: `stamped-${i}`,
            clerk_org_id: null,
            settings: { rate_limit: null, oidc: null, service_jwks: [], custom_domains: [] },
          },
          metadata: {
            actor: 'user_admin',
            tenant_id: tenantId,
            correlation_id: `req-stamped-${i}`,
            causation_id: null,
            occurred_at: occurredAt,
            schema_version: 1,
          },
        },
      ]));
    }
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 3 });
    try {
      await eventually(async () => (await checkpoint()) === position);
    } finally {
      await projector.stop();
    }
    const { rows } = await database.pool.query<{ occurred_high: Date }>(
      'select occurred_high from read_models.audit_log where position > $1 order by position',
      [before.toString()],
    );
    expect(rows.map((row) => row.occurred_high.toISOString())).toEqual([
      '2026-04-01T10:00:00.000Z',
      '2026-04-01T10:00:00.000Z',
      '2026-04-01T11:00:00.000Z',
      '2026-04-01T11:00:00.000Z',
    ]);
    const { rows: unordered } = await database.pool.query(
      `select position from (
         select position, occurred_high,
                greatest(occurred_at, max(occurred_at) over (order by position)) as expected
           from read_models.audit_log) as entry
        where occurred_high is distinct from expected`,
    );
    expect(unordered).toEqual([]);
    await equalsFreshReplay();
  });

  // Regression: a key's quota removed in a batch of its own was stored as the JSON null, and as SQL
  // NULL when the batch also held the key's issue (a replay): the rebuilt rows differed from the live ones.
  it('writes the rows of events applied one batch each as a replay applying them together does', async () => {
    const tenantId = randomUUID();
    const keyId = randomUUID();
    const meta = (i: number) => ({
      actor: 'user_admin',
      tenant_id: tenantId,
      correlation_id: `req-one-by-one-${i}`,
      causation_id: null,
      occurred_at: new Date(Date.parse('2026-05-01T00:00:00Z') + i * 1000).toISOString(),
      schema_version: 1,
    });
    await store.appendToStream(streamName.tenant(tenantId), [
      {
        type: 'TenantCreated',
        data: {
          tenant_id: tenantId,
          name: 'one by one',
          subdomain: `one-by-one-${tenantId.slice(0, 8)}`,
          clerk_org_id: null,
          settings: { rate_limit: null, oidc: null, service_jwks: [], custom_domains: [] },
        },
        metadata: meta(0),
      },
    ]);
    const keyEvents = [
      {
        type: 'ApiKeyIssued',
        data: {
          api_key_id: keyId,
          tenant_id: tenantId,
          name: 'k',
          key_hash: 'a'.repeat(64),
          key_prefix: 've_live_abcd',
          scopes: [],
          expires_at: null,
          quota: { requests_per_day: 10 },
          tags: [],
        },
      },
      { type: 'ApiKeyQuotaChanged', data: { api_key_id: keyId, tenant_id: tenantId, quota: null } },
      { type: 'ApiKeyTagsChanged', data: { api_key_id: keyId, tenant_id: tenantId, tags: ['a'] } },
    ];
    let position = 0n;
    for (const [i, event] of keyEvents.entries()) {
      ({ position } = await store.appendToStream(streamName.apiKey(keyId), [
        { ...event, metadata: meta(i + 1) },
      ]));
    }
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 1 });
    try {
      await eventually(async () => (await checkpoint()) === position);
    } finally {
      await projector.stop();
    }
    const { rows } = await database.pool.query<{ quota: unknown }>(
      'select quota from read_models.api_keys where id = $1 and quota is null',
      [keyId],
    );
    expect(rows).toEqual([{ quota: null }]);
    await equalsFreshReplay();
  });

  // Regression: a resource recorded after its tenant's deletion (as releases that checked the tenant
  // before appending could record one) was marked as a deleted tenant's only when a replay applied
  // both in one batch, not when the live projector applied it in a batch after the deletion's.
  it("marks a resource recorded after its tenant's deletion, whatever batch applies it", async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const meta = (i: number) => ({
      actor: 'user_admin',
      tenant_id: tenantId,
      correlation_id: `req-late-${i}`,
      causation_id: null,
      occurred_at: new Date(Date.parse('2026-05-02T00:00:00Z') + i * 1000).toISOString(),
      schema_version: 1,
    });
    await store.appendToStream(streamName.tenant(tenantId), [
      {
        type: 'TenantCreated',
        data: {
          tenant_id: tenantId,
          name: 'late',
          subdomain: `late-${tenantId.slice(0, 8)}`,
          clerk_org_id: null,
          settings: { rate_limit: null, oidc: null, service_jwks: [], custom_domains: [] },
        },
        metadata: meta(0),
      },
      { type: 'TenantDeleted', data: { tenant_id: tenantId }, metadata: meta(1) },
    ]);
    const { position } = await store.appendToStream(streamName.origin(originId), [
      {
        type: 'OriginCreated',
        data: originState(tenantId, originId),
        metadata: meta(2),
      },
    ]);
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 1 });
    try {
      await eventually(async () => (await checkpoint()) === position);
    } finally {
      await projector.stop();
    }
    const { rows } = await database.pool.query(
      'select tenant_deleted from read_models.origins where id = $1',
      [originId],
    );
    expect(rows).toEqual([{ tenant_deleted: true }]);
    await equalsFreshReplay();
  });

  // Regression: a stop while the projector was still reading its checkpoint closed no subscription
  // (none yet), and the subscription opened next waited for events for ever: `make dev` that failed
  // to start (a port taken) hung instead of exiting.
  it('stops when asked before it has subscribed', async () => {
    const subscriptions: string[] = [];
    const watched = new Proxy(store, {
      get(target, property, receiver) {
        if (property !== 'subscribeToAll') return Reflect.get(target, property, receiver);
        return (...args: Parameters<PostgresEventStore['subscribeToAll']>) => {
          subscriptions.push('opened');
          return target.subscribeToAll(...args);
        };
      },
    });
    const projector = startProjector({
      projection: { name: `stop-early-${randomUUID()}`, handle: async () => {} },
      store: watched,
      pool: database.pool,
    });
    const stopped = await Promise.race([
      projector.stop().then(() => 'stopped'),
      new Promise((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000).unref()),
    ]);
    expect(stopped).toBe('stopped');
    expect(subscriptions).toEqual([]);
  });
});
