import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../testing/postgres.js';
import { NotificationListener } from './notification-listener.js';

/**
 * Regression test: a subscription closed and another opened at once (a projector resubscribing after
 * an error) stopped the listener and started it again while the stop was still waiting: the stop then
 * ended the connection the new subscription relied on. Nothing reconnected it, so no append woke any
 * subscription again: the projector never saw another live event.
 */
let database: TestDatabase;
const CHANNEL = 've_test_listener';

beforeAll(async () => {
  database = await createTestDatabase({ migrate: false });
});
afterAll(async () => {
  await database?.drop();
});

/** Whether a NOTIFY on the channel wakes the listener's waiters within 3 s. */
async function hears(listener: NotificationListener): Promise<boolean> {
  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), 3_000);
  const woken = listener.changes.next(timeout.signal);
  await database.pool.query('select pg_notify($1, $2)', [CHANNEL, '']);
  await woken;
  clearTimeout(timer);
  return !timeout.signal.aborted;
}

describe('NotificationListener started again while it stops', () => {
  it('keeps the connection that was being made when the stop began', async () => {
    const listener = new NotificationListener({
      connection: { connectionString: database.url },
      channel: CHANNEL,
    });
    try {
      void listener.start();
      const stopping = listener.stop();
      const started = listener.start();
      await Promise.all([stopping, started]);
      expect(await hears(listener)).toBe(true);
    } finally {
      await listener.stop();
    }
  });

  it('keeps an established connection when started again before the stop ended it', async () => {
    const listener = new NotificationListener({
      connection: { connectionString: database.url },
      channel: CHANNEL,
    });
    try {
      await listener.start();
      const stopping = listener.stop();
      void listener.start();
      await stopping;
      expect(await hears(listener)).toBe(true);
    } finally {
      await listener.stop();
    }
  });

  it('connects again when started while the connection made for it is ended for the stop', async () => {
    const listener = new NotificationListener({
      connection: { connectionString: database.url },
      channel: CHANNEL,
    });
    const end = pg.Client.prototype.end;
    let startedAgain: Promise<void> | undefined;
    // The start arrives just as the stopped listener ends the connection it had been making.
    pg.Client.prototype.end = function (this: pg.Client, ...args: unknown[]) {
      startedAgain ??= listener.start();
      return (end as (...args: unknown[]) => Promise<void>).apply(this, args);
    } as typeof end;
    try {
      void listener.start();
      await listener.stop();
      pg.Client.prototype.end = end;
      expect(startedAgain).toBeDefined();
      await startedAgain;
      expect(await hears(listener)).toBe(true);
    } finally {
      pg.Client.prototype.end = end;
      await listener.stop();
    }
  });
});
