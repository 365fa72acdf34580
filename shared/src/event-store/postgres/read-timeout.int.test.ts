import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uniqueSuffix } from '../../testing/infrastructure.js';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { metadata } from '../contract.js';
import { ReadTimeoutError } from '../port.js';
import { PostgresEventStore } from './postgres-event-store.js';

/**
 * A read given `timeoutMs` is cut off by PostgreSQL (statement_timeout, in a read-only transaction of
 * its own) and answered ReadTimeoutError, and its connection goes back to the pool as it was. The read
 * is made to wait by a transaction holding the events table's ACCESS EXCLUSIVE lock: it waits as long
 * as the lock is held, past any timeout, whatever the machine's speed.
 */
let database: TestDatabase;
let store: PostgresEventStore;
let locker: pg.Client;
const stream = `timed-${uniqueSuffix()}`;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  await store.appendToStream(stream, [{ type: 'A', data: {}, metadata: metadata() }]);
  locker = new pg.Client({ connectionString: database.url });
  await locker.connect();
});
afterAll(async () => {
  await locker?.end();
  await store?.close();
  await database?.drop();
});

async function whileLocked<T>(work: () => Promise<T>): Promise<T> {
  await locker.query('begin; lock table event_store_events in access exclusive mode');
  try {
    return await work();
  } finally {
    await locker.query('rollback');
  }
}

describe('an event-store read with timeoutMs', () => {
  it('is cut off with ReadTimeoutError, readStream and readAll alike', async () => {
    await whileLocked(async () => {
      await expect(store.readStream(stream, { timeoutMs: 200 })).rejects.toBeInstanceOf(ReadTimeoutError);
      await expect(store.readAll({ maxCount: 10, timeoutMs: 200 })).rejects.toMatchObject({
        name: 'ReadTimeoutError',
        timeoutMs: 200,
      });
    });
  });

  it('leaves its connection as it was: later reads and appends on it are not cut off or read-only', async () => {
    // One connection: the one the cut-off read ran on serves what follows.
    const single = new pg.Pool({ connectionString: database.url, max: 1 });
    const onOne = new PostgresEventStore({ pool: single });
    try {
      await whileLocked(async () => {
        await expect(onOne.readStream(stream, { timeoutMs: 100 })).rejects.toBeInstanceOf(ReadTimeoutError);
      });
      const { rows } = await single.query<{ timeout: string; readOnly: string }>(
        `select current_setting('statement_timeout') as timeout,
                current_setting('transaction_read_only') as "readOnly"`,
      );
      expect(rows[0]).toEqual({ timeout: '0', readOnly: 'off' });
      await onOne.appendToStream(stream, [{ type: 'B', data: {}, metadata: metadata() }]);
      expect((await onOne.readStream(stream, { timeoutMs: 5_000 })).map((event) => event.type)).toEqual([
        'A',
        'B',
      ]);
    } finally {
      await onOne.close();
      await single.end();
    }
  });
});
