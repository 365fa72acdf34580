import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.js';
import { endSessionsUnnoticed, TEST_ADMIN_APPLICATION } from '../testing/unnoticed-disconnect.js';
import {
  isConnectionError,
  readOnceMoreIfLost,
  repeatable,
  StoreUnavailableError,
  withConnectionRetry,
} from './lost-connections.js';

let database: TestDatabase;
let admin: pg.Client;
const pools: pg.Pool[] = [];

beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
  admin = new pg.Client({ connectionString: database.url, application_name: TEST_ADMIN_APPLICATION });
  await admin.connect();
  await admin.query('create table probe (id int primary key, n int not null)');
});
afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end()));
  await admin?.end();
  await database?.drop();
});
beforeEach(async () => {
  await admin.query('truncate probe');
});

function newPool(connectionString = database.url): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 3 });
  pool.on('error', () => {}); // idle connections the server ends
  pools.push(pool);
  return pool;
}

/** Leaves `pool` with idle connections whose sessions the server ended without the pool knowing. */
async function cutWhileIdle(pool: pg.Pool): Promise<void> {
  const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
  for (const client of clients) client.release();
  expect(endSessionsUnnoticed(database.url)).toBeGreaterThanOrEqual(3);
}

async function probeRows(): Promise<number> {
  return (await admin.query<{ n: number }>('select count(*)::int as n from probe')).rows[0]?.n ?? -1;
}

describe('withConnectionRetry: a statement that meets a connection the server already ended', () => {
  it('without it, the statement fails (what the control plane answered 500 for)', async () => {
    const pool = newPool();
    await cutWhileIdle(pool);
    const failed = await pool.query('select 1').catch((error: unknown) => error);
    expect(isConnectionError(failed)).toBe(true);
  });

  it('a read is answered from a new connection', async () => {
    await admin.query('insert into probe values (1, 10)');
    const pool = withConnectionRetry(newPool());
    await cutWhileIdle(pool);
    const { rows } = await pool.query<{ n: number }>('select n from probe where id = $1', [1]);
    expect(rows).toEqual([{ n: 10 }]);
    // text-only and config forms alike
    await cutWhileIdle(pool);
    expect((await pool.query({ text: 'select count(*)::int as c from probe' })).rows).toEqual([{ c: 1 }]);
  });

  it('a write is not sent again: PostgreSQL refuses it on the read-only retry, so it is never applied twice', async () => {
    const pool = withConnectionRetry(newPool());
    await cutWhileIdle(pool);
    const failed = await pool.query('insert into probe values (2, 20)').catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StoreUnavailableError);
    expect((failed as StoreUnavailableError).outcomeUnknown).toBe(true);
    expect(await probeRows()).toBe(0);
    // A write hiding in a SELECT is refused the same way.
    await cutWhileIdle(pool);
    const hidden = await pool
      .query(`with added as (insert into probe values (3, 30) returning 1) select count(*) from added`)
      .catch((error: unknown) => error);
    expect((hidden as StoreUnavailableError).outcomeUnknown).toBe(true);
    expect(await probeRows()).toBe(0);
  });

  it('a write marked repeatable is sent again, and applied once', async () => {
    const pool = withConnectionRetry(newPool());
    await cutWhileIdle(pool);
    await pool.query(
      repeatable({
        text: 'insert into probe values ($1, $2) on conflict (id) do update set n = excluded.n',
        values: [4, 40],
      }),
    );
    expect((await admin.query('select id, n from probe')).rows).toEqual([{ id: 4, n: 40 }]);
  });

  it('a server that does not answer: StoreUnavailableError, the outcome known (nothing was sent)', async () => {
    const url = new URL(database.url);
    url.port = '1'; // nothing listens there
    const pool = withConnectionRetry(newPool(url.toString()));
    const failed = await pool.query('select 1').catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StoreUnavailableError);
    expect((failed as StoreUnavailableError).outcomeUnknown).toBe(false);
  });

  it('wraps a pool once, and leaves other errors and the pool itself alone', async () => {
    const pool = withConnectionRetry(newPool());
    expect(withConnectionRetry(pool)).toBe(pool);
    expect(pool).toBeInstanceOf(pg.Pool);
    await expect(pool.query('select * from no_such_table')).rejects.toMatchObject({ code: '42P01' });
    const client = await pool.connect();
    client.release();
    expect(pool.totalCount).toBeGreaterThan(0);
  });
});

describe('readOnceMoreIfLost: the server ends the connection while the read holds it, between statements', () => {
  // A checked-out connection has no 'error' listener of the pool's: unheard, the event PostgreSQL's
  // ending it emits (a restart, a failover) ended the process (the read-model projector, in the fault
  // suite's PostgreSQL outage).
  it('answers from a new connection, and nothing is thrown outside the read', async () => {
    const pool = newPool();
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      let attempts = 0;
      const answer = await readOnceMoreIfLost(pool, async (client) => {
        attempts++;
        if (attempts === 1) {
          const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
          const ended = new Promise((resolve) => client.once('end', resolve));
          await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
          // The connection's end arrives while no statement of it runs.
          await ended;
        }
        return (await client.query<{ n: number }>('select 41 + 1 as n')).rows[0]!.n;
      });
      expect(answer).toBe(42);
      expect(attempts).toBe(2);
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
    }
  });
});
