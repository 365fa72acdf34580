import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { heldWhileAppendsWait } from '../../testing/reservation-locks.js';
import { metadata } from '../contract.js';
import { UniquenessViolationError } from '../port.js';
import { PostgresEventStore } from './postgres-event-store.js';

/**
 * Two appends that each release a value the other claims (two tenants swapping their subdomains),
 * made to overlap: a third session holds one of the rows until both appends wait on a lock.
 */
describe('PostgreSQL reservations swapped between two streams at once', () => {
  let database: TestDatabase;
  let pool: pg.Pool;
  let store: PostgresEventStore;

  beforeAll(async () => {
    database = await createTestDatabase();
    pool = new pg.Pool({ connectionString: database.url, max: 8 });
    store = new PostgresEventStore({ pool });
  });
  afterAll(async () => {
    await store?.close();
    await pool?.end();
    await database?.drop();
  });

  const event = () => [{ type: 'Renamed', data: {}, metadata: metadata() }];
  const holders = async (values: string[]) => {
    const { rows } = await pool.query<{ value: string; stream: string }>(
      'select value, stream from event_store_reservations where value = any($1) order by value',
      [values],
    );
    return Object.fromEntries(rows.map((row) => [row.value, row.stream]));
  };

  it('refuses each append as a taken value (never a deadlock), and every value keeps one holder', async () => {
    for (const round of [1, 2, 3]) {
      const values = { x: `name:x-${round}`, y: `name:y-${round}` };
      const [a, b] = [`swap-a-${round}`, `swap-b-${round}`];
      await store.appendToStream(a, event(), { reservations: { claim: [values.x] } });
      await store.appendToStream(b, event(), { reservations: { claim: [values.y] } });

      // b's append reaches the held row first, a's second: each then holds a row the other claims.
      const settled = await heldWhileAppendsWait(
        pool,
        [values.y],
        [
          () =>
            store.appendToStream(b, event(), { reservations: { release: [values.y], claim: [values.x] } }),
          () =>
            store.appendToStream(a, event(), { reservations: { release: [values.x], claim: [values.y] } }),
        ],
      );
      for (const result of settled) {
        expect(result.status).toBe('rejected');
        if (result.status === 'rejected') {
          expect(result.reason, String(result.reason)).toBeInstanceOf(UniquenessViolationError);
        }
      }
      expect(await holders([values.x, values.y])).toEqual({ [values.x]: a, [values.y]: b });
    }
  });
});
