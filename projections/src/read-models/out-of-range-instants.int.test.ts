import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../runner/checkpoint.js';
import { startReadModelProjector } from './projector.js';
import { READ_MODELS_PROJECTION } from './schema.js';
import { eventually } from './testing/compare.js';

/**
 * Regression test: an API key issued with `expires_at: "0000-01-01T00:00:00Z"` (accepted by commands
 * then) was recorded as a year PostgreSQL's timestamptz refuses. Its batch failed, the projector
 * retried it forever, and no tenant's read models or audit log moved on after it. Such events stay in
 * the log: the read model stores their instant at the edge of the column's range instead.
 */
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

const metadata = (tenantId: string) => ({
  actor: 'user_admin',
  tenant_id: tenantId,
  correlation_id: randomUUID(),
  causation_id: null,
  occurred_at: '2026-12-01T10:00:00.000Z',
  schema_version: 1,
});

async function issueKey(
  tenantId: string,
  expiresAt: string | null,
): Promise<{ id: string; position: bigint }> {
  const id = randomUUID();
  const appended = await store.appendToStream(streamName.apiKey(id), [
    {
      type: 'ApiKeyIssued',
      data: {
        api_key_id: id,
        tenant_id: tenantId,
        name: 'k',
        key_hash: randomUUID().replaceAll('-', '').repeat(2),
        key_prefix: `ve_live_${id.slice(0, 4)}`,
        scopes: [],
        expires_at: expiresAt,
      },
      metadata: metadata(tenantId),
    },
  ]);
  return { id, position: appended.position };
}

describe('the read-model projector and instants out of the database’s range', () => {
  it('projects them at the edge of the range and goes on with every other tenant’s events', async () => {
    const attacker = randomUUID();
    const victim = randomUUID();
    const poisoned = [
      await issueKey(attacker, '0000-01-01T00:00:00.000Z'),
      await issueKey(attacker, '-000001-12-31T23:00:00.000Z'),
      await issueKey(attacker, '+010000-01-01T13:59:59.000Z'),
    ];
    const after = await issueKey(victim, null);
    const projector = startReadModelProjector({ store, pool: database.pool, batchSize: 1 });
    try {
      await eventually(
        async () => (await readCheckpoint(database.pool, READ_MODELS_PROJECTION)) === after.position,
      );
      const { rows } = await database.pool.query<{ id: string; expires_at: Date | null }>(
        'select id, expires_at from read_models.api_keys',
      );
      const expiry = new Map(rows.map((row) => [row.id, row.expires_at?.toISOString() ?? null]));
      expect(poisoned.map(({ id }) => expiry.get(id))).toEqual([
        '0001-01-01T00:00:00.000Z',
        '0001-01-01T00:00:00.000Z',
        '9999-12-31T23:59:59.999Z',
      ]);
      expect(expiry.get(after.id)).toBeNull();
    } finally {
      await projector.stop();
    }
  });
});
