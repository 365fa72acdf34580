import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../postgres/lost-connections.js';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { endSessionsUnnoticed, TEST_ADMIN_APPLICATION } from '../../testing/unnoticed-disconnect.js';
import { metadata } from '../contract.js';
import { PostgresEventStore } from './postgres-event-store.js';

/**
 * An append whose connection is lost is looked up before anything else happens: stored → its result,
 * not stored → sent once more on a new connection, unknowable → StoreUnavailableError with
 * outcomeUnknown. Never twice.
 */
let database: TestDatabase;
let admin: pg.Client;
const pools: pg.Pool[] = [];
const stores: PostgresEventStore[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  admin = new pg.Client({ connectionString: database.url, application_name: TEST_ADMIN_APPLICATION });
  await admin.connect();
});
afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await Promise.all(pools.map((pool) => pool.end()));
  await admin?.end();
  await database?.drop();
});

function newPool(connectionString = database.url): pg.Pool {
  const pool = new pg.Pool({ connectionString, max: 3 });
  pool.on('error', () => {});
  pools.push(pool);
  return pool;
}

function unreachableUrl(): string {
  const url = new URL(database.url);
  url.port = '1'; // nothing listens there
  return url.toString();
}

function newStore(pool: pg.Pool, onConnectionError?: (error: unknown) => void): PostgresEventStore {
  const store = new PostgresEventStore({ pool, ...(onConnectionError ? { onConnectionError } : {}) });
  stores.push(store);
  return store;
}

const processId = (client: pg.PoolClient) => (client as unknown as { processID: number }).processID;

/**
 * The pool, whose next pooled connection loses its statement: its session ends `before` the statement
 * is sent, or `after` it committed (its answer lost). `lookups: false` — connections of their own
 * (where the store looks the outcome up) reach no server.
 */
function losingNextStatement(pool: pg.Pool, when: 'before' | 'after', { lookups = true } = {}): pg.Pool {
  let armed = true;
  const options = lookups ? pool.options : { ...pool.options, connectionString: unreachableUrl() };
  const connect = async () => {
    const client = await pool.connect();
    if (!armed) return client;
    armed = false;
    const send = client.query.bind(client) as (config: pg.QueryConfig) => Promise<pg.QueryResult>;
    const lose = async (config: pg.QueryConfig) => {
      if (when === 'after') await send(config);
      await admin.query('select pg_terminate_backend($1, 5000)', [processId(client)]);
      throw new Error('Connection terminated unexpectedly');
    };
    client.query = lose as unknown as typeof client.query;
    return client;
  };
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'options') return options;
      if (property === 'connect') return connect;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

async function eventsOf(stream: string): Promise<Array<{ position: string; revision: string }>> {
  return (
    await admin.query<{ position: string; revision: string }>(
      'select position::text, revision::text from event_store_events where stream = $1 order by revision',
      [stream],
    )
  ).rows;
}

const event = (n: number) => ({ type: 'Numbered', data: { n }, metadata: metadata() });

describe('PostgreSQL event store: an append whose connection is lost', () => {
  it('on a connection the server ended while idle: appended once', async () => {
    const pool = newPool();
    const store = newStore(pool);
    await store.appendToStream('idle-cut', [event(0)], { expectedRevision: 'no_stream' });
    const clients = await Promise.all([pool.connect(), pool.connect(), pool.connect()]);
    for (const client of clients) client.release();
    expect(endSessionsUnnoticed(database.url)).toBeGreaterThanOrEqual(3);
    const result = await store.appendToStream('idle-cut', [event(1)], { expectedRevision: 0n });
    expect(result.nextExpectedRevision).toBe(1n);
    expect(await eventsOf('idle-cut')).toHaveLength(2);
  });

  it('lost before it was sent: sent once more on a new connection', async () => {
    const errors: unknown[] = [];
    const store = newStore(losingNextStatement(newPool(), 'before'), (error) => errors.push(error));
    const result = await store.appendToStream('lost-before', [event(0), event(1)], {
      expectedRevision: 'no_stream',
    });
    const stored = await eventsOf('lost-before');
    expect(stored).toHaveLength(2);
    expect(result).toEqual({ nextExpectedRevision: 1n, position: BigInt(stored[1]?.position ?? -1) });
    expect(errors).toHaveLength(1);
  });

  it('lost after it committed: its result, and not appended again', async () => {
    const store = newStore(losingNextStatement(newPool(), 'after'));
    const result = await store.appendToStream('lost-after', [event(0), event(1)], {
      expectedRevision: 'no_stream',
    });
    const stored = await eventsOf('lost-after');
    expect(stored).toHaveLength(2);
    expect(result).toEqual({ nextExpectedRevision: 1n, position: BigInt(stored[1]?.position ?? -1) });
  });

  it('lost, and PostgreSQL cannot be asked: the outcome is unknown (and it was stored once)', async () => {
    const store = newStore(losingNextStatement(newPool(), 'after', { lookups: false }));
    const failed = await store
      .appendToStream('lost-unknown', [event(0)], { expectedRevision: 'no_stream' })
      .catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StoreUnavailableError);
    expect((failed as StoreUnavailableError).outcomeUnknown).toBe(true);
    expect(await eventsOf('lost-unknown')).toHaveLength(1);
  });

  it('PostgreSQL unreachable: nothing was sent, so the outcome is known', async () => {
    const store = newStore(newPool(unreachableUrl()));
    const failed = await store
      .appendToStream('unreachable', [event(0)], { expectedRevision: 'no_stream' })
      .catch((error: unknown) => error);
    expect(failed).toBeInstanceOf(StoreUnavailableError);
    expect((failed as StoreUnavailableError).outcomeUnknown).toBe(false);
  });
});
