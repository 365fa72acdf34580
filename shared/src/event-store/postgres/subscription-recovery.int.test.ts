import { migrateUp } from '@vantageedge/migrations/runner';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { metadata } from '../contract.js';
import type { EventStore, RecordedEvent, Subscription } from '../port.js';
import { isConnectionError, PostgresEventStore } from './postgres-event-store.js';
import { createPrivatePostgres, type PrivatePostgres } from './testing/private-postgres.js';

const SUBSCRIBER_APP = 've-event-store-subscriber';

/** Delivers what a subscription yields into an array and lets a test wait for a count. */
function follow(subscription: Subscription) {
  const received: RecordedEvent[] = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  const done = (async () => {
    for await (const event of subscription) {
      received.push(event);
      for (const waiter of waiters.filter((w) => received.length >= w.count)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  })();
  return {
    received,
    done,
    until(count: number): Promise<void> {
      if (received.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
  };
}

async function appendNumbered(store: EventStore, from: number, count: number): Promise<void> {
  for (let n = from; n < from + count; n++) {
    await store.appendToStream('numbers', [{ type: 'Numbered', data: { n }, metadata: metadata() }], {
      expectedRevision: n === 0 ? 'no_stream' : BigInt(n - 1),
    });
  }
}

/** Appends, retrying while the server is away (the writer is not what these tests examine). */
async function appendNumberedRetrying(store: EventStore, from: number, count: number): Promise<void> {
  for (let n = from; n < from + count; n++) {
    for (;;) {
      try {
        await appendNumbered(store, n, 1);
        break;
      } catch (error) {
        if (!isConnectionError(error)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

function expectExactlyOnceInOrder(received: RecordedEvent[], count: number): void {
  expect(received.map((event) => (event.data as { n: number }).n)).toEqual(
    Array.from({ length: count }, (_, n) => n),
  );
  expect(received.map((event) => event.position)).toEqual(
    Array.from({ length: count }, (_, n) => BigInt(n + 1)),
  );
}

describe('PostgreSQL subscription survives pg_terminate_backend', () => {
  let database: TestDatabase;
  let subscriberPool: pg.Pool;
  let subscriberStore: PostgresEventStore;
  let writer: PostgresEventStore;
  const connectionErrors: unknown[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    // The subscriber's pool and LISTEN connection carry an application_name so the test can kill
    // exactly them; the writer uses the test database's own pool.
    subscriberPool = new pg.Pool({
      connectionString: database.url,
      application_name: SUBSCRIBER_APP,
      max: 2,
    });
    subscriberStore = new PostgresEventStore({
      pool: subscriberPool,
      onConnectionError: (error) => connectionErrors.push(error),
    });
    writer = new PostgresEventStore({ pool: database.pool });
  });
  afterAll(async () => {
    await subscriberStore?.close();
    await writer?.close();
    await subscriberPool?.end();
    await database?.drop();
  });

  async function terminateSubscriberConnections(): Promise<number> {
    const { rows } = await database.pool.query<{ terminated: boolean }>(
      `select pg_terminate_backend(pid) as terminated from pg_stat_activity
        where datname = $1 and application_name = $2`,
      [database.name, SUBSCRIBER_APP],
    );
    return rows.filter((row) => row.terminated).length;
  }

  it('resumes after its connections are killed while idle and while catching up, without loss or repeats', async () => {
    const subscription = subscriberStore.subscribeToAll();
    const subscriber = follow(subscription);

    await appendNumbered(writer, 0, 10);
    await subscriber.until(10);

    // Idle: only the LISTEN connection (and idle pooled ones) exist. Kill them, then append: the
    // event must still arrive, which needs the listener to come back (there is no polling).
    expect(await terminateSubscriberConnections()).toBeGreaterThanOrEqual(1);
    await appendNumbered(writer, 10, 5);
    await subscriber.until(15);

    // Busy: keep killing its connections while a backlog is being written and read.
    const writing = appendNumbered(writer, 15, 1_500);
    let busyKills = 0;
    for (let kill = 0; kill < 5; kill++) {
      await subscriber.until(15 + (kill + 1) * 200);
      if ((await terminateSubscriberConnections()) > 0) busyKills++;
    }
    await writing;
    await subscriber.until(1_515);
    await subscription.close();
    await subscriber.done;

    expectExactlyOnceInOrder(subscriber.received, 1_515);
    // The faults really happened: connections died while idle and while catching up, and the store saw
    // them die (and recovered). A kill may find the subscriber between connections on a loaded machine,
    // and a pooled connection killed while idle is only noticed when next used: not one error per kill.
    expect(busyKills).toBeGreaterThanOrEqual(3);
    expect(connectionErrors.length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});

describe('PostgreSQL subscription survives a server restart', () => {
  let server: PrivatePostgres;
  let subscriberPool: pg.Pool;
  let writerPool: pg.Pool;
  let subscriberStore: PostgresEventStore;
  let writer: PostgresEventStore;
  const connectionErrors: unknown[] = [];

  beforeAll(async () => {
    server = await createPrivatePostgres();
    await migrateUp(server.url);
    subscriberPool = new pg.Pool({ connectionString: server.url, max: 2 });
    writerPool = new pg.Pool({ connectionString: server.url, max: 2 });
    subscriberStore = new PostgresEventStore({
      pool: subscriberPool,
      onConnectionError: (error) => connectionErrors.push(error),
    });
    writer = new PostgresEventStore({ pool: writerPool });
  });
  afterAll(async () => {
    await subscriberStore?.close();
    await writer?.close();
    await subscriberPool?.end();
    await writerPool?.end();
    await server?.destroy();
  });

  it('catches up and goes live again after the server restarts, without loss or repeats', async () => {
    const subscription = subscriberStore.subscribeToAll();
    const subscriber = follow(subscription);
    await appendNumbered(writer, 0, 100);
    await subscriber.until(100);

    // Restart while the subscription waits live.
    await server.stop();
    await server.start();
    await appendNumberedRetrying(writer, 100, 100);
    await subscriber.until(200);

    // Restart in the middle of a backlog.
    const writing = appendNumberedRetrying(writer, 200, 600);
    await subscriber.until(300);
    await server.stop();
    await server.start();
    await writing;
    await subscriber.until(800);

    await subscription.close();
    await subscriber.done;
    expectExactlyOnceInOrder(subscriber.received, 800);
    expect(connectionErrors.length).toBeGreaterThanOrEqual(2);
  }, 120_000);
});
