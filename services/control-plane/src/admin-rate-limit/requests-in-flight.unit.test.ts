import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createErrorHandler } from '../http/errors.js';
import { limitUserRequestsInFlight } from './requests-in-flight.js';

const servers: Array<{ close(): void; closeAllConnections(): void }> = [];

afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** A caller's requests that wait on `release` (a slow query holding a pooled connection). */
async function slowApp(max: number) {
  let running = 0;
  const waiting: Array<() => void> = [];
  const app = express();
  app.use((_req, res, next) => {
    res.locals['caller'] = { userId: 'user_noisy' };
    next();
  });
  app.use(limitUserRequestsInFlight(max));
  app.get('/slow', async (_req, res) => {
    running += 1;
    await new Promise<void>((resolve) => waiting.push(resolve));
    running -= 1;
    res.json({ ok: true });
  });
  app.use(createErrorHandler());
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const port = (server.address() as AddressInfo).port;
  return {
    running: () => running,
    releaseAll: () => {
      for (const resolve of waiting.splice(0)) resolve();
    },
    /** Sends GET /slow; `abandon` closes the connection once the handler runs. */
    send(abandon: boolean): Promise<number> {
      return new Promise((resolve) => {
        const req = request({ host: '127.0.0.1', port, path: '/slow', agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', () => resolve(0));
        req.end();
        if (abandon) setTimeout(() => req.destroy(), 50);
      });
    },
  };
}

describe('a caller’s requests in flight', () => {
  it('regression: requests whose client left still count until their handler answers', async () => {
    const app = await slowApp(2);
    // The caller opens its allowance of slow requests and closes each connection at once, over and over.
    for (let round = 0; round < 5; round++) {
      await Promise.all([app.send(true), app.send(true)]);
    }
    // Only `max` handlers may be running (each holding a pooled connection), however often it left.
    expect(app.running()).toBe(2);
    expect(await app.send(false)).toBe(429);
    app.releaseAll();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const next = app.send(false);
    await new Promise((resolve) => setTimeout(resolve, 50));
    app.releaseAll();
    expect(await next).toBe(200);
  });
});
