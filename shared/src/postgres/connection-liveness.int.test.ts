import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../testing/postgres.js';
import { startTcpProxy, type TcpProxy } from '../testing/tcp-proxy.js';
import { createLivePool, StatementDeadlineError } from './connection-liveness.js';
import { isConnectionError } from './lost-connections.js';

/**
 * A connection whose route forgot it (no FIN, no RST): every statement sent on it waited for the
 * kernel's retransmission timeout, and the pool handed it out again afterwards.
 * The deadline is also a new connection's time to connect and every live statement's to be answered:
 * time enough for both on a machine busy with other tests.
 */
const DEADLINE_MS = 1_500;
let database: TestDatabase;
let proxy: TcpProxy;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
  proxy = await startTcpProxy(database.url);
  pool = createLivePool(
    { connectionString: proxy.urlFor(database.url), max: 2 },
    { statementDeadlineMs: DEADLINE_MS },
  );
  pool.on('error', () => undefined);
});
afterAll(async () => {
  await proxy?.close();
  await pool?.end();
  await database?.drop();
});

/** Opens every connection of the pool, leaves them idle, then the route forgets them (new ones pass). */
async function idleConnectionsDie(): Promise<void> {
  const clients = await Promise.all([pool.connect(), pool.connect()]);
  for (const client of clients) client.release();
  proxy.blackholeOpenConnections();
}

describe('statements on a connection that died silently', () => {
  it('fail past the deadline as a connection error, and the pool replaces the connection', async () => {
    await idleConnectionsDie();
    const lost = await pool.query('select 1').catch((error: unknown) => error);
    expect(lost).toBeInstanceOf(StatementDeadlineError);
    expect(isConnectionError(lost)).toBe(true);
    // Each dead connection fails once and is dropped: after them, new connections answer.
    await pool.query('select 1').catch(() => undefined);
    expect((await pool.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('on a checked-out connection: the statement fails, the connection takes no other, and a new one answers', async () => {
    await pool.query('select 1'); // a live connection in the pool
    const client = await pool.connect();
    proxy.blackholeOpenConnections();
    await expect(client.query('select 1')).rejects.toBeInstanceOf(StatementDeadlineError);
    await expect(client.query('select 1')).rejects.toThrow(/not queryable|terminated/i);
    client.release(true);
    expect((await pool.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });
});
