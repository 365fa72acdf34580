import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import type { Authorizer } from '../auth/authorize.js';
import type { Caller } from '../auth/caller.js';
import { createErrorHandler } from '../http/errors.js';
import { limitTenantRequestsInFlight } from './tenant-requests-in-flight.js';

const servers: Array<{ close(): void; closeAllConnections(): void }> = [];

afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

/** Every caller but `outsider` is a member of tenant-a. */
const membersOfA: Authorizer = {
  access: async (caller, tenantId) =>
    tenantId === 'tenant-a' && caller.userId !== 'outsider' ? 'write' : 'none',
};

/**
 * GET /slow?tenant=…: authorized on the tenant (twice, as a command checks access again when it retries),
 * then waits on `release` (a slow query holding a pooled connection); 404 for a tenant not granted.
 */
async function slowApp(max: number) {
  const limit = limitTenantRequestsInFlight(max);
  const authorizer = limit.counting(membersOfA);
  let running = 0;
  const waiting: Array<() => void> = [];
  const app = express();
  app.use((req, res, next) => {
    res.locals['caller'] = { userId: String(req.query['user']) };
    next();
  });
  app.use(limit.middleware);
  app.get('/slow', async (req, res) => {
    const caller = res.locals['caller'] as Caller;
    const tenant = String(req.query['tenant']);
    if ((await authorizer.access(caller, tenant)) === 'none') {
      res.status(404).json({ error: { code: 'not_found' } });
      return;
    }
    await authorizer.access(caller, tenant);
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
    send(user: string, tenant: string, abandon = false): Promise<number> {
      return new Promise((resolve) => {
        const path = `/slow?user=${user}&tenant=${tenant}`;
        const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
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

const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('a tenant’s requests in flight', () => {
  it('counts every caller’s requests on the tenant, once each, until their handler answers, even once their client left', async () => {
    const app = await slowApp(2);
    for (let round = 0; round < 5; round++) {
      await Promise.all([app.send('user_1', 'tenant-a', true), app.send('user_2', 'tenant-a', true)]);
    }
    expect(app.running()).toBe(2);
    expect(await app.send('user_3', 'tenant-a')).toBe(429);
    app.releaseAll();
    await settle();
    const next = app.send('user_3', 'tenant-a');
    await settle();
    app.releaseAll();
    expect(await next).toBe(200);
  });

  it('a tenant the request is not granted takes none of its places', async () => {
    const app = await slowApp(1);
    const held = app.send('user_1', 'tenant-a');
    await settle();
    expect(app.running()).toBe(1);
    // Naming a full tenant one may not see is answered as it would be otherwise, and takes no place.
    expect(await app.send('outsider', 'tenant-a')).toBe(404);
    expect(app.running()).toBe(1);
    app.releaseAll();
    expect(await held).toBe(200);
  });

  it('0 turns the limit off', async () => {
    const app = await slowApp(0);
    const sent = Array.from({ length: 5 }, (_, i) => app.send(`user_${i}`, 'tenant-a'));
    await expect.poll(() => app.running()).toBe(5);
    app.releaseAll();
    for (const status of await Promise.all(sent)) expect(status).toBe(200);
  });
});
