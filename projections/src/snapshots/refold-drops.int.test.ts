import { randomUUID } from 'node:crypto';
import { streamName } from '@vantageedge/shared/domain/events';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockCheckpoint } from '../runner/checkpoint.js';
import { type RecordedDrop, recordDrops, rollBackDrops, writeTombstones } from './refold-drops.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';

let db: TestDatabase;
let store: PostgresEventStore;

beforeAll(async () => {
  db = await createTestDatabase();
  store = new PostgresEventStore({ pool: db.pool });
});

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

/** Whether another session waits for a lock (the checkpoint row the refold's transaction holds). */
async function someoneWaitsForALock(holderPid: number): Promise<boolean> {
  const { rows } = await db.pool.query<{ waiting: boolean }>(
    `select exists (select 1 from pg_stat_activity
       where datname = current_database() and pid <> $1 and wait_event_type = 'Lock') as waiting`,
    [holderPid],
  );
  return rows[0]!.waiting;
}

/** One tenant's drop appended, as a refold records it before its transaction. */
async function oneDropRecorded(): Promise<{ tenantId: string; recorded: Map<string, RecordedDrop> }> {
  const tenantId = randomUUID();
  const recorded = new Map<string, RecordedDrop>();
  await recordDrops(
    store,
    [{ tenantId, position: null, eventType: null, error: 'refused', laterEvents: 0 }],
    'system:snapshot-refold',
    recorded,
  );
  return { tenantId, recorded };
}

/** A refold's transaction, open: it holds the checkpoint and wrote the drops' tombstones. */
async function refoldHoldingTombstones(recorded: Map<string, RecordedDrop>): Promise<pg.PoolClient> {
  const refold = await db.pool.connect();
  await refold.query('begin');
  await lockCheckpoint(refold, SNAPSHOT_PROJECTION);
  await writeTombstones(refold, recorded);
  return refold;
}

describe('settling the drops of a failed refold', () => {
  it('regression: a drop whose refold commits after its client gave up is not recorded as rolled back', async () => {
    const { tenantId, recorded } = await oneDropRecorded();
    // The refold's transaction: it holds the checkpoint and wrote the tombstone, and its COMMIT is on
    // its way (the refold's client stopped waiting for the answer: a statement deadline, a lost reply).
    const refold = await refoldHoldingTombstones(recorded);
    try {
      const { rows } = await refold.query<{ pid: number }>('select pg_backend_pid() as pid');
      const settling = rollBackDrops(
        store,
        db.pool,
        recorded,
        new Error('statement deadline'),
        'system:snapshot-refold',
      );
      let settled = false;
      void settling.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      // The commit lands once the settling has looked (or waits to look).
      for (let i = 0; i < 500 && !settled && !(await someoneWaitsForALock(rows[0]!.pid)); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await refold.query('commit');
      expect(await settling).toEqual([]);
    } finally {
      refold.release();
    }
    const types = (await store.readStream(streamName.tenant(tenantId))).map((event) => event.type);
    expect(types).toEqual(['TenantDroppedFromGateways']);
  });

  it('records the roll-back of a drop whose refold rolled back', async () => {
    const { tenantId, recorded } = await oneDropRecorded();
    const refold = await refoldHoldingTombstones(recorded);
    try {
      await refold.query('rollback');
    } finally {
      refold.release();
    }
    expect(
      await rollBackDrops(store, db.pool, recorded, new Error('the event store is unreachable'), 'refold'),
    ).toEqual([]);
    const events = await store.readStream(streamName.tenant(tenantId));
    expect(events.map((event) => event.type)).toEqual(['TenantDroppedFromGateways', 'TenantDropRolledBack']);
    expect(events[1]).toMatchObject({
      data: { tenant_id: tenantId, drop_position: events[0]!.position.toString() },
      metadata: { causation_id: events[0]!.id, correlation_id: events[0]!.metadata.correlation_id },
    });
  });
});
