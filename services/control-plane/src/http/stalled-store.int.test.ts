import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * PostgreSQL that accepts the control plane's statements and answers none of them (a server frozen by its
 * disk, a stalled link) while admins keep sending requests: each request past the pool's connections
 * waited for one for ever, /readyz never answered, and nothing but the clients' patience bounded the
 * requests piling up.
 */
const POOL_SIZE = 2;
const POOL_WAIT_MS = 300;
let proxy: TcpProxy;
let cp: ControlPlaneHarness;

beforeAll(async () => {
  proxy = await startTcpProxy(TEST_INFRA.databaseUrl);
  cp = await startControlPlane({
    withReadSide: true,
    connectThrough: (url) => proxy.urlFor(url),
    poolSize: POOL_SIZE,
    poolWaitMs: POOL_WAIT_MS,
  });
  // Every connection of the pool is open (and idle) before PostgreSQL stalls.
  const connections = await Promise.all(Array.from({ length: POOL_SIZE }, () => cp.pool.connect()));
  for (const connection of connections) connection.release();
  expect(cp.pool.totalCount).toBe(POOL_SIZE);
});
afterEach(() => {
  proxy.stall(false);
});
afterAll(async () => {
  proxy?.stall(false);
  await cp?.close();
  await proxy?.close();
});

/** A request, and its answer once it has one. */
function sent(request: Promise<ApiResponse>): {
  answer: () => ApiResponse | undefined;
  done: Promise<unknown>;
} {
  let answer: ApiResponse | undefined;
  const done = request.then((response) => {
    answer = response;
  });
  return { answer: () => answer, done };
}

describe('PostgreSQL accepting statements and answering none', () => {
  it('requests past the pool’s connections answer 503 store_unavailable, and none opens a connection past the pool', async () => {
    const opened = proxy.connectionsOpened();
    proxy.stall(true);
    const requests = Array.from({ length: 3 * POOL_SIZE }, () => sent(cp.request('GET', '/api/v1/tenants')));
    const answered = () => requests.flatMap((request) => request.answer() ?? []);
    // The pool's own connections wait on PostgreSQL; every other request is answered.
    await expect.poll(() => answered().length, { timeout: 10_000 }).toBe(2 * POOL_SIZE);
    for (const answer of answered()) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(503);
      expect(json(answer)['error']).toMatchObject({ code: 'store_unavailable' });
      expect(answer.headers.get('retry-after')).toBe('2');
    }
    expect(cp.pool.waitingCount).toBe(0);
    expect(proxy.connectionsOpened() - opened).toBe(0);

    // PostgreSQL answers again: the requests that held its connections are answered as usual.
    proxy.stall(false);
    await Promise.all(requests.map((request) => request.done));
    const statuses = answered().map((answer) => answer.status);
    expect(statuses.filter((status) => status === 200)).toHaveLength(POOL_SIZE);
    expect(statuses.filter((status) => status === 503)).toHaveLength(2 * POOL_SIZE);
    expect((await cp.request('GET', '/api/v1/tenants')).status).toBe(200);
  });

  it('a command waiting for a connection answers 503 store_unavailable and stores nothing; sent again later, it is stored once', async () => {
    proxy.stall(true);
    const holding = Array.from({ length: POOL_SIZE }, () => sent(cp.request('GET', '/api/v1/tenants')));
    await expect.poll(() => cp.pool.waitingCount + cp.pool.idleCount, { timeout: 10_000 }).toBe(0);
    const create = () =>
      cp.request('POST', '/api/v1/tenants', { body: { name: 'stalled', subdomain: 'stalled-store' } });
    const refused = await create();
    expect(refused.status, JSON.stringify(refused.body)).toBe(503);
    expect(json(refused)['error']).toMatchObject({ code: 'store_unavailable' });

    proxy.stall(false);
    await Promise.all(holding.map((request) => request.done));
    const created = await create();
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const stored = (await cp.allEvents()).filter(
      (event) => event.type === 'TenantCreated' && (event.data as { name: string }).name === 'stalled',
    );
    expect(stored).toHaveLength(1);
  });

  it('/readyz answers 503 not_ready, and 200 once PostgreSQL answers again', async () => {
    proxy.stall(true);
    const probe = sent(cp.request('GET', '/readyz', { token: null }));
    await expect.poll(() => probe.answer()?.status, { timeout: 10_000 }).toBe(503);
    expect(json(probe.answer() as ApiResponse)).toMatchObject({
      status: 'not_ready',
      checks: { postgres: 'unavailable' },
    });

    proxy.stall(false);
    await expect
      .poll(async () => (await cp.request('GET', '/readyz', { token: null })).status, { timeout: 10_000 })
      .toBe(200);
  });
});
