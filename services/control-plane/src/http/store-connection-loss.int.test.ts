import type { EventStore } from '@vantageedge/shared/event-store/port';
import {
  createPrivatePostgres,
  type PrivatePostgres,
} from '@vantageedge/shared/event-store/postgres/testing/private-postgres';
import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';

/**
 * PostgreSQL ends the pool's connections (a restart, a failover, pg_terminate_backend, a proxy's idle
 * timeout) while they sit idle. The pool hears of it only when each socket's last bytes are read, so
 * the very next requests are handed connections that are already cut. Each must still be answered as
 * if nothing happened: a read is sent again on a new connection, a command appends exactly once.
 */
let cp: ControlPlaneHarness;
let tenantId: string;
let originId: string;
let routeId: string;

beforeAll(async () => {
  cp = await startControlPlane({ withReadSide: true });
  const tenant = await cp.request('POST', '/api/v1/tenants', {
    body: { name: 'cut', subdomain: 'cut' },
  });
  tenantId = json(tenant)['id'] as string;
  const origin = await cp.request('POST', '/api/v1/origins', {
    body: { tenant_id: tenantId, name: 'backend', url: 'https://backend.example.com' },
  });
  originId = json(origin)['id'] as string;
  const route = await cp.request('POST', '/api/v1/routes', {
    body: { tenant_id: tenantId, path_pattern: '/first/*', origin_id: originId, auth_mode: 'public' },
  });
  expect(route.status, JSON.stringify(route.body)).toBe(201);
  routeId = json(route)['id'] as string;
  const read = await cp.request('GET', `/api/v1/routes/${routeId}`, {
    headers: { 'X-Min-Position': route.headers.get('x-event-position') ?? '' },
  });
  expect(read.status).toBe(200);
});
afterAll(async () => {
  await cp?.close();
});

/**
 * Fills the pool with idle connections, then has the server end every session of the database (the
 * projector's and the event store's LISTEN connection too), as a restart would.
 */
async function cutEveryConnection(): Promise<void> {
  await Promise.all(Array.from({ length: 8 }, () => cp.request('GET', `/api/v1/routes/${routeId}`)));
  const admin = new pg.Client({ connectionString: cp.db.url });
  await admin.connect();
  try {
    const { rowCount } = await admin.query(
      `select pg_terminate_backend(pid) from pg_stat_activity
        where datname = current_database() and pid <> pg_backend_pid()`,
    );
    expect(rowCount).toBeGreaterThan(0);
  } finally {
    void admin.end();
  }
}

async function routesOfTenant(): Promise<Array<{ path_pattern: string }>> {
  const events = await cp.allEvents();
  return events
    .filter((event) => event.type === 'RouteCreated')
    .map((event) => event.data as { tenant_id: string; path_pattern: string })
    .filter((data) => data.tenant_id === tenantId);
}

describe('the first requests after PostgreSQL ended the pool connections', () => {
  it('GET of a list answers 200', async () => {
    for (let round = 0; round < 3; round++) {
      await cutEveryConnection();
      const list = await cp.request('GET', `/api/v1/routes?tenant_id=${tenantId}`);
      expect(list.status, JSON.stringify(list.body)).toBe(200);
      expect((json(list)['data'] as unknown[]).length).toBeGreaterThan(0);
    }
  });

  it('GET of one resource answers 200', async () => {
    for (let round = 0; round < 3; round++) {
      await cutEveryConnection();
      const one = await cp.request('GET', `/api/v1/routes/${routeId}`);
      expect(one.status, JSON.stringify(one.body)).toBe(200);
      expect(json(one)['id']).toBe(routeId);
    }
  });

  it('a command answers 201 and appends exactly once', async () => {
    for (let round = 0; round < 3; round++) {
      await cutEveryConnection();
      const path = `/after-cut-${round}/*`;
      const created = await cp.request('POST', '/api/v1/routes', {
        body: { tenant_id: tenantId, path_pattern: path, origin_id: originId, auth_mode: 'public' },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect((await routesOfTenant()).filter((route) => route.path_pattern === path)).toHaveLength(1);
    }
  });

  it('a command with an Idempotency-Key answers 201 and appends exactly once', async () => {
    for (let round = 0; round < 3; round++) {
      await cutEveryConnection();
      const path = `/keyed-after-cut-${round}/*`;
      const created = await cp.request('POST', '/api/v1/routes', {
        headers: { 'Idempotency-Key': `cut-${round}` },
        body: { tenant_id: tenantId, path_pattern: path, origin_id: originId, auth_mode: 'public' },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect((await routesOfTenant()).filter((route) => route.path_pattern === path)).toHaveLength(1);
    }
  });
});

/** The event store, whose next appends fail as planned: after storing the events, before, or at once. */
function failingAppends(store: EventStore, plan: Array<'stored' | 'not stored' | 'unreachable'>): EventStore {
  const appendToStream: EventStore['appendToStream'] = async (stream, events, options) => {
    const next = plan.shift();
    if (next === undefined) return store.appendToStream(stream, events, options);
    if (next === 'stored') await store.appendToStream(stream, events, options);
    throw next === 'unreachable'
      ? new StoreUnavailableError('connect ECONNREFUSED')
      : new StoreUnavailableError('Connection terminated unexpectedly', { outcomeUnknown: true });
  };
  return new Proxy(store, {
    get(target, property) {
      if (property === 'appendToStream') return appendToStream;
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('a command whose answer is lost with the connection (503, then the same Idempotency-Key)', () => {
  const plan: Array<'stored' | 'not stored' | 'unreachable'> = [];
  let lossy: ControlPlaneHarness;
  let tenant: string;
  let origin: string;

  beforeAll(async () => {
    lossy = await startControlPlane({ wrapStore: (store) => failingAppends(store, plan) });
    tenant = json(
      await lossy.request('POST', '/api/v1/tenants', { body: { name: 'lossy', subdomain: 'lossy' } }),
    )['id'] as string;
    origin = json(
      await lossy.request('POST', '/api/v1/origins', {
        body: { tenant_id: tenant, name: 'backend', url: 'https://backend.example.com' },
      }),
    )['id'] as string;
  });
  afterAll(async () => {
    await lossy?.close();
  });

  const createRoute = (key: string, path: string) =>
    lossy.request('POST', '/api/v1/routes', {
      headers: { 'Idempotency-Key': key },
      body: { tenant_id: tenant, path_pattern: path, origin_id: origin, auth_mode: 'public' },
    });
  const created = async (path: string) =>
    (await lossy.allEvents()).filter(
      (event) =>
        event.type === 'RouteCreated' && (event.data as { path_pattern: string }).path_pattern === path,
    );
  /** As if the key's lock had run out (30 s). */
  const lockRunsOut = (key: string) =>
    lossy.db.pool.query(
      `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
      [key],
    );

  it('stored, answer lost: 503 store_unavailable; the retry never applies it twice (409 idempotency_answer_lost)', async () => {
    plan.push('stored');
    const first = await createRoute('lost-answer', '/lost-answer/*');
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(json(first)['error']).toMatchObject({
      code: 'store_unavailable',
      message: expect.stringMatching(/may or may not/),
    });
    expect(first.headers.get('retry-after')).toBe('2');
    const stored = await created('/lost-answer/*');
    expect(stored).toHaveLength(1);

    // While the attempt's lock lasts, its outcome is not settled: a retry waits.
    const early = await createRoute('lost-answer', '/lost-answer/*');
    expect(early.status).toBe(409);
    expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(1);
    expect(Number(early.headers.get('retry-after'))).toBeLessThanOrEqual(30);

    await lockRunsOut('lost-answer');
    for (let retry = 0; retry < 2; retry++) {
      const later = await createRoute('lost-answer', '/lost-answer/*');
      expect(later.status, JSON.stringify(later.body)).toBe(409);
      expect(json(later)['error']).toMatchObject({ code: 'idempotency_answer_lost' });
      expect(later.headers.get('x-event-position')).toBe(stored[0]?.position.toString());
      expect(later.headers.get('idempotent-replayed')).toBe('true');
    }
    expect(await created('/lost-answer/*')).toHaveLength(1);
  });

  it('not stored, answer lost: the retry after the lock runs it, once', async () => {
    plan.push('not stored');
    const first = await createRoute('lost-nothing', '/lost-nothing/*');
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(await created('/lost-nothing/*')).toHaveLength(0);
    await lockRunsOut('lost-nothing');
    const retry = await createRoute('lost-nothing', '/lost-nothing/*');
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(await created('/lost-nothing/*')).toHaveLength(1);
    const replay = await createRoute('lost-nothing', '/lost-nothing/*');
    expect(replay.body).toEqual(retry.body);
    expect(await created('/lost-nothing/*')).toHaveLength(1);
  });

  it('nothing sent (PostgreSQL unreachable): 503, and the key is free for the retry at once', async () => {
    plan.push('unreachable');
    const first = await createRoute('unreachable', '/unreachable/*');
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(json(first)['error']).toMatchObject({
      code: 'store_unavailable',
      message: expect.stringMatching(/cannot be reached/),
    });
    const retry = await createRoute('unreachable', '/unreachable/*');
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(await created('/unreachable/*')).toHaveLength(1);
  });
});

describe('PostgreSQL down, then started again', () => {
  let server: PrivatePostgres;
  let down: ControlPlaneHarness;

  beforeAll(async () => {
    server = await createPrivatePostgres();
    down = await startControlPlane({ withReadSide: true, serverUrl: server.url });
  }, 120_000);
  afterAll(async () => {
    await down?.close();
    await server?.destroy();
  });

  it('answers 503 store_unavailable with Retry-After while it is down, and the first request after it is back 200', async () => {
    const tenant = await down.request('POST', '/api/v1/tenants', {
      body: { name: 'down', subdomain: 'down' },
    });
    expect(tenant.status).toBe(201);
    const tenantId = json(tenant)['id'] as string;
    const origin = { tenant_id: tenantId, name: 'backend', url: 'https://backend.example.com' };
    expect((await down.request('GET', '/api/v1/tenants')).status).toBe(200);

    await server.stop();
    const answers = [
      await down.request('GET', '/api/v1/tenants'),
      await down.request('GET', `/api/v1/tenants/${tenantId}`),
      await down.request('POST', '/api/v1/origins', { body: origin }),
      await down.request('POST', '/api/v1/origins', {
        body: origin,
        headers: { 'Idempotency-Key': 'while-down' },
      }),
    ];
    for (const answer of answers) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(503);
      expect(json(answer)['error']).toMatchObject({ code: 'store_unavailable' });
      expect(answer.headers.get('retry-after')).toBe('2');
    }

    await server.start();
    const list = await down.request('GET', '/api/v1/tenants');
    expect(list.status, JSON.stringify(list.body)).toBe(200);
    const added = await down.request('POST', '/api/v1/origins', {
      body: origin,
      headers: { 'Idempotency-Key': 'while-down' },
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
  }, 120_000);
});
