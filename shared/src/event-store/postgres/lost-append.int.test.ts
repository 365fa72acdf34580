import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../postgres/lost-connections.js';
import { uniqueSuffix } from '../../testing/infrastructure.js';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { startTcpProxy, type TcpProxy } from '../../testing/tcp-proxy.js';
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
let proxy: TcpProxy;
const pools: pg.Pool[] = [];
const stores: PostgresEventStore[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  admin = new pg.Client({ connectionString: database.url, application_name: TEST_ADMIN_APPLICATION });
  await admin.connect();
  proxy = await startTcpProxy(database.url);
});
afterAll(async () => {
  await Promise.all(stores.map((store) => store.close()));
  await proxy?.close();
  await Promise.all(pools.map((pool) => pool.end()));
  await admin?.end();
  await database?.drop();
});

function newPool(connectionString = database.url, max = 3): pg.Pool {
  const pool = new pg.Pool({ connectionString, max });
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
 * The pool, whose next pooled connection loses its append: its session ends `before` the append is
 * sent, or `after` it committed (its answer lost). `lookups: false` — connections of their own
 * (where the store looks the outcome up) reach no server.
 */
function losingNextStatement(pool: pg.Pool, when: 'before' | 'after', { lookups = true } = {}): pg.Pool {
  let armed = true;
  const connect = async () => {
    const client = await pool.connect();
    if (!armed) return client;
    armed = false;
    const send = client.query.bind(client) as (config: pg.QueryConfig) => Promise<pg.QueryResult>;
    const lose = async (config: pg.QueryConfig) => {
      // Other statements on the connection (the store may ask who its session is) go through.
      if (!isAppend(config)) return send(config);
      if (when === 'after') await send(config);
      await admin.query('select pg_terminate_backend($1, 5000)', [processId(client)]);
      throw new Error('Connection terminated unexpectedly');
    };
    client.query = lose as unknown as typeof client.query;
    return client;
  };
  return withOptions(lookups ? pool.options : { ...pool.options, connectionString: unreachableUrl() }, pool, {
    connect,
  });
}

const isAppend = (config: unknown) =>
  typeof config === 'object' &&
  config !== null &&
  String((config as pg.QueryConfig).text).includes('event_store_append');

/**
 * The pool as the store sees it: `options` (what its connections of their own — lookups, a second
 * send — connect with) replaced, pooled connections as they were.
 */
function withOptions(
  options: pg.PoolOptions,
  pool: pg.Pool,
  overrides: Partial<Record<keyof pg.Pool, unknown>> = {},
): pg.Pool {
  return new Proxy(pool, {
    get(target, property) {
      if (property === 'options') return options;
      if (property in overrides) return overrides[property as keyof pg.Pool];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** Sessions of the test database running an append that waits for a lock. */
async function appendsWaitingForALock(): Promise<number[]> {
  const { rows } = await admin.query<{ pid: number }>(
    `select pid from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock' and query like '%event_store_append%'`,
  );
  return rows.map((row) => row.pid);
}

async function waitUntil(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await condition()); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A transaction holding the event-store position lock: every append waits until `release`. */
async function holdPositionLock(): Promise<{ release(): Promise<void> }> {
  const blocker = new pg.Client({ connectionString: database.url, application_name: TEST_ADMIN_APPLICATION });
  await blocker.connect();
  await blocker.query('begin');
  await blocker.query('update event_store_position set value = value');
  let released: Promise<void> | null = null;
  return {
    release() {
      released ??= blocker.query('commit').then(
        () => blocker.end(),
        () => blocker.end(),
      );
      return released;
    },
  };
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

  it('cut between client and server while it waits for a lock, its session still open: ended, then sent once more; appended once', async () => {
    const pool = newPool(proxy.urlFor(database.url), 1);
    const store = newStore(pool);
    const lock = await holdPositionLock();
    try {
      let settled = false;
      const appending = store.appendToStream('cut-waiting', [event(0)], { expectedRevision: 'no_stream' });
      appending.then(
        () => (settled = true),
        () => (settled = true),
      );
      await waitUntil(
        'the append waits for the lock',
        async () => (await appendsWaitingForALock()).length === 1,
      );
      const [first] = await appendsWaitingForALock();
      proxy.cutClientSide();
      // The session that sent it lives on (PostgreSQL heard nothing): it could still commit. The store
      // ends it and, finding nothing stored, sends the append once more — which waits for the lock too.
      await waitUntil('the first session ended and the append was sent again', async () => {
        const waiting = await appendsWaitingForALock();
        return settled || (waiting.length === 1 && waiting[0] !== first);
      });
      await lock.release();
      const result = await appending;
      const stored = await eventsOf('cut-waiting');
      expect(stored).toHaveLength(1);
      expect(result).toEqual({ nextExpectedRevision: 0n, position: BigInt(stored[0]?.position ?? -1) });
    } finally {
      await lock.release();
    }
  });

  it('on a pooled connection dead without a word (a proxy idle timeout), its session still open: sent once more at once', async () => {
    const pool = newPool(proxy.urlFor(database.url), 1);
    const store = newStore(pool);
    await store.appendToStream('idle-proxy', [event(0)], { expectedRevision: 'no_stream' });
    proxy.dropSilently();
    const started = Date.now();
    const result = await store.appendToStream('idle-proxy', [event(1)], { expectedRevision: 0n });
    expect(Date.now() - started).toBeLessThan(1_500);
    const stored = await eventsOf('idle-proxy');
    expect(stored).toHaveLength(2);
    expect(result).toEqual({ nextExpectedRevision: 1n, position: BigInt(stored[1]?.position ?? -1) });
  });

  it('lost while its session is still open, and that session cannot be ended: the outcome is unknown', async () => {
    // A role that sees every session but may not end the test role's (a superuser's), for the store's
    // connections of its own; pooled connections stay the test role's.
    const role = `ve_lookup_${uniqueSuffix()}`;
    await admin.query(`create role ${role} login password 'lookup' in role pg_read_all_stats`);
    try {
      const lookupUrl = new URL(database.url);
      lookupUrl.username = role;
      lookupUrl.password = 'lookup';
      const pool = newPool(proxy.urlFor(database.url), 1);
      const store = newStore(
        withOptions({ ...pool.options, connectionString: proxy.urlFor(lookupUrl.toString()) }, pool),
      );
      const lock = await holdPositionLock();
      try {
        const appending = store
          .appendToStream('cut-unending', [event(0)], { expectedRevision: 'no_stream' })
          .catch((error: unknown) => error);
        await waitUntil(
          'the append waits for the lock',
          async () => (await appendsWaitingForALock()).length === 1,
        );
        proxy.cutClientSide();
        const failed = await appending;
        expect(failed).toBeInstanceOf(StoreUnavailableError);
        expect((failed as StoreUnavailableError).outcomeUnknown).toBe(true);
        // Rightly so: the session it was sent on still commits it once the lock is free.
        await lock.release();
        await waitUntil(
          'the first session commits it',
          async () => (await eventsOf('cut-unending')).length === 1,
        );
      } finally {
        await lock.release();
      }
    } finally {
      await admin.query(`drop role ${role}`).catch(() => undefined);
    }
  });
});
