import { randomUUID } from 'node:crypto';
import { migrateDown, migrateUp } from '@vantageedge/migrations/runner';
import { streamName } from '@vantageedge/shared/domain/events';
import { InMemoryEventStore } from '@vantageedge/shared/event-store/in-memory/in-memory-event-store';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_MODELS_PROJECTION } from '../read-models/schema.js';
import { startSnapshotProjector } from '../snapshots/snapshot-projector.js';
import { readSnapshotsPosition, SNAPSHOT_PROJECTION } from '../snapshots/snapshot-state.js';
import { tenantCreated } from '../snapshots/testing.js';

/** Migration 0060: the snapshot projector's checkpoint moves into projection_checkpoints, and back. */

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase({ migrate: false });
  await migrateUp(db.url, { target: 59 });
});
afterAll(async () => {
  await db?.drop();
});

async function rows(table: string): Promise<Array<{ name: string; position: string }>> {
  const result = await db.pool.query<{ name: string; position: string }>(
    `select name, position from ${table} order by name`,
  );
  return result.rows;
}

describe('one checkpoint table (migration 0060)', () => {
  it('carries the snapshot checkpoint over, so the projector resumes where it stopped; down moves it back', async () => {
    const store = new InMemoryEventStore();
    const folded = randomUUID();
    const fresh = randomUUID();
    const before = await store.appendToStream(streamName.tenant(folded), [tenantCreated(folded)]);
    await db.pool.query('insert into snapshot_projector_checkpoint (name, position) values ($1, $2)', [
      SNAPSHOT_PROJECTION,
      before.position.toString(),
    ]);
    await db.pool.query('insert into projection_checkpoints (name, position) values ($1, 7)', [
      READ_MODELS_PROJECTION,
    ]);

    await migrateUp(db.url, { target: 60 });
    expect(await rows('projection_checkpoints')).toEqual([
      { name: SNAPSHOT_PROJECTION, position: before.position.toString() },
      { name: READ_MODELS_PROJECTION, position: '7' },
    ]);
    expect(await readSnapshotsPosition(db.pool)).toBe(before.position);

    // Today's projector also needs what later migrations add (0190: projection_parked_events, 0215:
    // snapshot_state.json_bytes).
    const later = await migrateUp(db.url, { target: 215 });
    const after = await store.appendToStream(streamName.tenant(fresh), [tenantCreated(fresh)]);
    const projector = startSnapshotProjector({ store, pool: db.pool, bus: createInMemorySnapshotBus() });
    try {
      await eventually('folded the new event', () => projector.checkpoint() === after.position);
    } finally {
      await projector.stop();
    }
    const { rows: states } = await db.pool.query<{ tenant_id: string }>(
      'select tenant_id from snapshot_state',
    );
    // The event before the carried-over checkpoint was not folded again.
    expect(states.map((row) => row.tenant_id)).toEqual([fresh]);

    await migrateDown(db.url, { steps: later.applied.length + 1 });
    expect(await rows('snapshot_projector_checkpoint')).toEqual([
      { name: SNAPSHOT_PROJECTION, position: after.position.toString() },
    ]);
    expect(await rows('projection_checkpoints')).toEqual([{ name: READ_MODELS_PROJECTION, position: '7' }]);
  });
});
