import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Dispatcher } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TargetPool, UpstreamQueueFullError } from './target-pool.js';

/** A handler that only records how its exchange ended. */
function recorder(): Dispatcher.DispatchHandler & { error?: Error; started: boolean } {
  const handler: Dispatcher.DispatchHandler & { error?: Error; started: boolean } = {
    started: false,
    onRequestStart() {
      handler.started = true;
    },
    onResponseError(_controller, error) {
      handler.error = error;
    },
  };
  return handler;
}

describe('a target pool', () => {
  let origin: Server;
  let url: string;

  beforeAll(async () => {
    origin = createServer(() => {}); // never answers: each request holds its connection
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    origin.closeAllConnections();
    await new Promise<void>((resolve) => origin.close(() => resolve()));
  });

  it('queues up to its bound with every connection busy, then refuses at once', async () => {
    const pool = new TargetPool(url, { connections: 1 }, 2);
    const options: Dispatcher.DispatchOptions = { path: '/', method: 'GET', headersTimeout: 10_000 };
    const handlers = [recorder(), recorder(), recorder()];
    expect(pool.dispatch(options, handlers[0]!)).toBe(false); // the one connection is now busy
    pool.dispatch(options, handlers[1]!);
    pool.dispatch(options, handlers[2]!);
    expect(pool.queued).toBe(2);
    expect(() => pool.dispatch(options, recorder())).toThrow(UpstreamQueueFullError);
    expect(pool.stats.queued).toBe(0); // they wait in the gateway's queue, not undici's
    await pool.destroy();
    expect(handlers.every((handler) => handler.error !== undefined)).toBe(true);
  });

  it('lets go of a request given up while it waits: its place in the bound is free at once', () => {
    const pool = new TargetPool(url, { connections: 1 }, 1);
    const options: Dispatcher.DispatchOptions = { path: '/', method: 'GET', headersTimeout: 10_000 };
    pool.dispatch(options, recorder());
    const waiting = recorder();
    pool.dispatch(options, waiting);
    expect(() => pool.dispatch(options, recorder())).toThrow(UpstreamQueueFullError);
    pool.abandon(waiting);
    expect(pool.queued).toBe(0);
    expect(pool.dispatch(options, recorder())).toBe(false);
    void pool.destroy();
  });
});
