import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { startStalledConnectTarget } from '@vantageedge/shared/testing/stalled-connect-target';
import { buildConnector, Pool, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TenantUpstreamSockets, TenantUpstreamSocketsFullError } from './tenant-upstream-sockets.js';

let origin: Server;
let url: string;
const open = new Set<Socket>();
const waiting: ServerResponse[] = [];
const pools: Pool[] = [];

beforeAll(async () => {
  origin = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    if (req.url === '/hold') waiting.push(res);
    else res.end('ok');
  });
  origin.on('connection', (socket: Socket) => {
    open.add(socket);
    socket.on('close', () => open.delete(socket));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
});

afterEach(async () => {
  for (const res of waiting.splice(0)) res.end('ok');
  await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
  await eventually('every socket is closed', () => open.size === 0, 5_000);
});

afterAll(async () => {
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

/** A pool (one per target in the gateway) whose sockets count for `tenantId`. */
function poolOf(sockets: TenantUpstreamSockets, tenantId: string): Pool {
  const pool = new Pool(url, {
    connections: 8,
    keepAliveTimeout: 60_000,
    connect: sockets.connector(tenantId, buildConnector({})),
  });
  pools.push(pool);
  return pool;
}

async function get(pool: Pool, path: string): Promise<void> {
  const { body } = await request(`${url}${path}`, { dispatcher: pool });
  await body.text();
}

describe('a tenant’s upstream sockets', () => {
  it('closes its idle sockets, oldest first, before opening one past its limit; never another tenant’s', async () => {
    const sockets = new TenantUpstreamSockets(2);
    const other = poolOf(sockets, 'other');
    await get(other, '/');
    const [first, second] = [poolOf(sockets, 'a'), poolOf(sockets, 'a')] as [Pool, Pool];
    await Promise.all([get(first, '/'), get(first, '/')]);
    expect(sockets.openOf('a')).toBe(2);

    await get(second, '/');
    expect(sockets.openOf('a')).toBe(2);
    await eventually('one idle socket of the first pool is closed', () => open.size === 3, 2_000);
    expect(sockets.openOf('other')).toBe(1);
  });

  it('opens a connection anyway when none of its sockets is idle (requests in flight have their own bound)', async () => {
    const sockets = new TenantUpstreamSockets(2);
    const pool = poolOf(sockets, 'a');
    const held = [get(pool, '/hold'), get(pool, '/hold')];
    await eventually('both requests arrive', () => waiting.length === 2, 2_000);
    await get(poolOf(sockets, 'a'), '/');
    expect(sockets.openOf('a')).toBe(3);
    for (const res of waiting.splice(0)) res.end('ok');
    await Promise.all(held);
  });

  it('counts a failed connection only while it is attempted', async () => {
    const sockets = new TenantUpstreamSockets(2);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const dead = new Pool(deadUrl, { connect: sockets.connector('a', buildConnector({})) });
    pools.push(dead);
    await expect(request(deadUrl, { dispatcher: dead })).rejects.toThrow();
    expect(sockets.openOf('a')).toBe(0);
  });

  it('fails a connect at once while it holds twice its limit, connects that never complete included', async () => {
    const sockets = new TenantUpstreamSockets(2);
    const stalled = await startStalledConnectTarget();
    // One pool per target, as in the gateway: a tenant with many targets whose connects all hang (in the
    // gateway the requests that started them may have left already: undici still runs the connect).
    const stalledPool = () => {
      const pool = new Pool(stalled.url, {
        connect: sockets.connector('a', buildConnector({ timeout: 5_000 })),
      });
      pools.push(pool);
      return pool;
    };
    try {
      for (let index = 0; index < sockets.ceiling; index += 1) {
        request(stalled.url, { dispatcher: stalledPool() }).catch(() => {});
      }
      await eventually('the connects are pending', () => sockets.openOf('a') === sockets.ceiling, 2_000);
      await expect(request(stalled.url, { dispatcher: stalledPool() })).rejects.toBeInstanceOf(
        TenantUpstreamSocketsFullError,
      );
      expect(sockets.openOf('a')).toBe(sockets.ceiling);
      expect(sockets.openOf('other')).toBe(0);
    } finally {
      await Promise.all(pools.splice(0).map((pool) => pool.destroy()));
      await stalled.close();
    }
  });

  it('keeps counting a socket opened after closing the tenant’s last idle one (a limit of 1)', async () => {
    const sockets = new TenantUpstreamSockets(1);
    for (let target = 0; target < 3; target += 1) {
      await get(poolOf(sockets, 'a'), '/');
      await delay(20); // undici unrefs the socket (it turns idle) once the response has ended
      expect(sockets.openOf('a')).toBe(1);
    }
    await eventually('only the newest socket is open', () => open.size === 1, 2_000);
  });
});
