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

  /**
   * A value nobody holds has no row to lock first. Here b has claimed `n` (not yet committed) and waits
   * for `m`; meanwhile a's stream claims `r` (committed) and a, releasing `r` and claiming `n`, locks and
   * deletes `r` and waits for b's `n`; once `m` is free, b reaches `r` and waits for a.
   */
  it('never deadlocks when an append claims a value that had no row when another locked its own', async () => {
    const [n, m, r] = ['name:n-free', 'name:o-free', 'name:p-free'];
    const [a, b] = ['free-a', 'free-b'];
    await store.appendToStream(a, event());
    const lockWaiters = async () => {
      const { rows } = await pool.query<{ waiting: number }>(
        `select count(*)::int as waiting from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock'`,
      );
      return rows[0]?.waiting ?? 0;
    };
    const until = async (condition: () => Promise<boolean>) => {
      while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 10));
    };
    let claimedR = false;
    const settle = (append: Promise<unknown>) =>
      append.then(
        () => 'appended',
        (error: unknown) => error,
      );
    const holder = await pool.connect();
    try {
      await holder.query('begin');
      await holder.query(`insert into event_store_reservations (value, stream) values ($1, 'free-holder')`, [
        m,
      ]);
      const claimsAll = settle(store.appendToStream(b, event(), { reservations: { claim: [n, m, r] } }));
      await until(async () => (await lockWaiters()) >= 1);
      const claimsR = settle(store.appendToStream(a, event(), { reservations: { claim: [r] } })).finally(
        () => {
          claimedR = true;
        },
      );
      const swaps = settle(store.appendToStream(a, event(), { reservations: { release: [r], claim: [n] } }));
      // The swap waits: for b's `n` once a's claim of `r` is in, or behind that claim while it waits itself.
      await until(async () => {
        const waiting = await lockWaiters();
        return waiting >= 3 || (claimedR && waiting >= 2);
      });
      await holder.query('rollback');
      const outcomes = await Promise.all([claimsAll, claimsR, swaps]);
      for (const outcome of outcomes) {
        if (outcome !== 'appended') expect(outcome, String(outcome)).toBeInstanceOf(UniquenessViolationError);
      }
    } finally {
      holder.release();
    }
    // Each value is held by one of the two streams or by none (the holder's claim was rolled back).
    const held = await holders([n, m, r]);
    expect(Object.keys(held).every((value) => held[value] === a || held[value] === b)).toBe(true);
  });
});
