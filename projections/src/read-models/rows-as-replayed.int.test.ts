import { randomUUID } from 'node:crypto';
import { migrateUp } from '@vantageedge/migrations/runner';
import { streamName } from '@vantageedge/shared/domain/events';
import type { EventMetadata } from '@vantageedge/shared/event-store/port';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { originState } from '../snapshots/testing.js';
import { startReadModelProjector } from './projector.js';
import { replayReadModels } from './replay.js';
import { READ_MODELS_PROJECTION, READ_MODELS_SCHEMA } from './schema.js';
import { eventually, tableDifferences } from './testing/compare.js';

/**
 * Migration 0390 makes the rows earlier projectors wrote otherwise than a replay writes them (a removed
 * quota as JSON's null, a resource recorded after its tenant's deletion left unmarked) what a replay
 * writes, so the live read models equal a rebuild without one.
 */
let database: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
  await migrateUp(database.url, { target: 380 });
  store = new PostgresEventStore({ pool: database.pool });
});

afterAll(async () => {
  await store?.close();
  await database?.drop();
});

describe('migration 0390', () => {
  it('makes the rows earlier projectors wrote equal to a replay of the log', async () => {
    const tenantId = randomUUID();
    const keyId = randomUUID();
    const origin = originState(tenantId);
    const meta = (i: number): EventMetadata => ({
      actor: 'user_admin',
      tenant_id: tenantId,
      correlation_id: `req-0390-${i}`,
      causation_id: null,
      occurred_at: new Date(Date.parse('2026-05-03T00:00:00Z') + i * 1000).toISOString(),
      schema_version: 1,
    });
    await store.appendToStream(streamName.tenant(tenantId), [
      {
        type: 'TenantCreated',
        data: {
          tenant_id: tenantId,
          name: 'earlier',
          subdomain: 'earlier',
          clerk_org_id: null,
          settings: { rate_limit: null, oidc: null, service_jwks: [], custom_domains: [] },
        },
        metadata: meta(0),
      },
    ]);
    await store.appendToStream(streamName.apiKey(keyId), [
      {
        type: 'ApiKeyIssued',
        data: {
          api_key_id: keyId,
          tenant_id: tenantId,
          name: 'k',
          key_hash: 'b'.repeat(64),
          key_prefix: 've_live_efgh',
          scopes: [],
          expires_at: null,
          quota: { requests_per_day: 5 },
        },
        metadata: meta(1),
      },
      {
        type: 'ApiKeyQuotaChanged',
        data: { api_key_id: keyId, tenant_id: tenantId, quota: null },
        metadata: meta(2),
      },
    ]);
    await store.appendToStream(streamName.tenant(tenantId), [
      { type: 'TenantDeleted', data: { tenant_id: tenantId }, metadata: meta(3) },
    ]);
    const { position } = await store.appendToStream(streamName.origin(origin.origin_id), [
      { type: 'OriginCreated', data: origin, metadata: meta(4) },
    ]);
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 1 });
    try {
      await eventually(
        async () => (await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) === position,
      );
    } finally {
      await projector.stop();
    }
    // The rows as the projector of release 0380 wrote them.
    await database.pool.query(`update read_models.api_keys set quota = 'null'::jsonb where id = $1`, [keyId]);
    await database.pool.query('update read_models.origins set tenant_deleted = false where id = $1', [
      origin.origin_id,
    ]);

    await migrateUp(database.url);
    const rebuilt = await replayReadModels({ store, pool: database.pool, swap: false });
    try {
      expect(await tableDifferences(database.pool, READ_MODELS_SCHEMA, rebuilt.schema)).toEqual({});
    } finally {
      await database.pool.query(`drop schema ${rebuilt.schema} cascade`);
    }
  });
});
