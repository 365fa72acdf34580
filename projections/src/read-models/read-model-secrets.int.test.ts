import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { newEvent, originState, tenantCreated } from '../snapshots/testing.js';
import { startReadModelProjector } from './projector.js';
import { READ_MODELS_PROJECTION } from './schema.js';
import { eventually } from './testing/compare.js';

/**
 * Configured URLs as the read models keep them: a tenant's OIDC jwks_url with a token in its query (the
 * gateways fetch it with that token: the event log and the snapshots keep it), and an origin target URL
 * with user information and a key in its query, as earlier releases recorded them. Every read shows
 * them redacted; the read models, which only serve those reads, hold none of these credentials either,
 * like a route's credential headers.
 */

const JWKS_TOKEN = 'read-model-jwks-token-0123456789';
const PASSWORD = 'read-model-origin-password-0123456789';
const QUERY_KEY = 'read-model-origin-query-key-0123456789';

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

describe('read models', () => {
  it("hold no credential of a tenant's jwks_url or an origin's target URL, and keep the rest of them", async () => {
    const tenantId = randomUUID();
    const created = tenantCreated(tenantId);
    const settings = {
      ...(created.data as { settings: object }).settings,
      oidc: {
        issuer: 'https://idp.example.com',
        audience: 'acme',
        jwks_url: `https://idp.example.com/jwks?tenant=acme&token=${JWKS_TOKEN}`,
      },
    };
    await store.appendToStream(streamName.tenant(tenantId), [
      { ...created, data: { ...(created.data as object), settings } } as typeof created,
    ]);
    const origin = {
      ...originState(tenantId),
      targets: [
        { url: `https://user:${PASSWORD}@legacy.example.com/v1?api_key=${QUERY_KEY}&region=eu`, weight: 1 },
      ],
    };
    const last = await store.appendToStream(streamName.origin(origin.origin_id), [
      newEvent('OriginCreated', origin),
    ]);
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 50 });
    try {
      await eventually(
        async () => (await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) === last.position,
      );
    } finally {
      await projector.stop();
    }

    const { rows: tenants } = await database.pool.query<{ row: string; jwks_url: string }>(
      `select t::text as row, settings->'oidc'->>'jwks_url' as jwks_url from read_models.tenants t where id = $1`,
      [tenantId],
    );
    const { rows: origins } = await database.pool.query<{ row: string; url: string; targets: unknown }>(
      'select o::text as row, url, targets from read_models.origins o where id = $1',
      [origin.origin_id],
    );
    for (const { row } of [...tenants, ...origins]) {
      for (const secret of [JWKS_TOKEN, PASSWORD, QUERY_KEY]) expect(row).not.toContain(secret);
    }
    expect(tenants[0]?.jwks_url).toBe('https://idp.example.com/jwks?tenant=acme&token=<redacted>');
    expect(origins[0]?.url).toBe('https://legacy.example.com/v1?api_key=<redacted>&region=eu');
    expect(origins[0]?.targets).toEqual([
      { url: 'https://legacy.example.com/v1?api_key=<redacted>&region=eu', weight: 1 },
    ]);
  });
});
