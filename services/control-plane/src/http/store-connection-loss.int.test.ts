import { randomUUID } from 'node:crypto';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import {
  createPrivatePostgres,
  type PrivatePostgres,
} from '@vantageedge/shared/event-store/postgres/testing/private-postgres';
import { StoreUnavailableError } from '@vantageedge/shared/postgres/lost-connections';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { startTcpProxy, type TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ControlPlaneHarness,
  json,
  PLATFORM_ADMIN,
  startControlPlane,
} from '../testing/control-plane-harness.js';

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

  it('a usage read answers 200', async () => {
    for (let round = 0; round < 3; round++) {
      await cutEveryConnection();
      const usage = await cp.request('GET', `/api/v1/usage?tenant_id=${tenantId}`);
      expect(usage.status, JSON.stringify(usage.body)).toBe(200);
      expect(json(usage)['tenant_id']).toBe(tenantId);
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

type Planned = 'stored' | 'not stored' | 'unreachable' | 'held';

/**
 * The event store, whose next appends fail as planned: after storing the events, before, or at once —
 * or `held`: sent on a session of its own (`hold`) that has not committed it yet, as a session whose
 * client is gone may still do.
 */
function failingAppends(
  store: EventStore,
  plan: Planned[],
  hold: (stream: string, events: Parameters<EventStore['appendToStream']>[1]) => Promise<void> = async () => {
    throw new Error('no hold');
  },
): EventStore {
  const appendToStream: EventStore['appendToStream'] = async (stream, events, options) => {
    const next = plan.shift();
    if (next === undefined) return store.appendToStream(stream, events, options);
    if (next === 'stored') await store.appendToStream(stream, events, options);
    if (next === 'held') await hold(stream, events);
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

async function waitUntil(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  for (const deadline = Date.now() + timeoutMs; !(await condition()); ) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A promise, and whether it has settled. */
function tracked<T>(promise: Promise<T>): { promise: Promise<T>; settled: () => boolean } {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return { promise, settled: () => done };
}

/** Sessions of a database waiting for a lock while running a statement that mentions `text`. */
async function waitingForALock(databaseUrl: string, text: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      `select pid from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and strpos(query, $1) > 0`,
      [text],
    );
    return rows.map((row) => row.pid);
  } finally {
    await client.end();
  }
}

describe('a command whose answer is lost with the connection (503, then the same Idempotency-Key)', () => {
  const plan: Planned[] = [];
  /** Sessions holding an append they have not committed (plan `held`). */
  const held: pg.Client[] = [];
  let lossy: ControlPlaneHarness;
  let tenant: string;
  let origin: string;

  /** As PostgresEventStore sends it, in a transaction left open. */
  const hold = async (stream: string, events: Parameters<EventStore['appendToStream']>[1]) => {
    const client = new pg.Client({ connectionString: lossy.db.url });
    await client.connect();
    held.push(client);
    await client.query('begin');
    await client.query('select event_store_append($1, $2, $3, $4, $5::jsonb[], $6::jsonb[], $7, $8)', [
      stream,
      'any',
      events.map(() => randomUUID()),
      events.map((event) => event.type),
      events.map((event) => JSON.stringify(event.data)),
      events.map((event) => JSON.stringify(event.metadata)),
      [],
      [],
    ]);
  };

  beforeAll(async () => {
    lossy = await startControlPlane({ wrapStore: (store) => failingAppends(store, plan, hold) });
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
    await Promise.all(held.map((client) => client.end()));
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

  const createOrigin = (name: string, headers: Record<string, string>) =>
    lossy.request('POST', '/api/v1/origins', {
      headers,
      body: { tenant_id: tenant, name, url: `https://${name}.example.com` },
    });
  const originsNamed = async (name: string) =>
    (await lossy.allEvents()).filter(
      (event) => event.type === 'OriginCreated' && (event.data as { name: string }).name === name,
    );

  it('not stored, and another command then sent with the same X-Request-Id: the retry runs it (not taken as applied)', async () => {
    plan.push('not stored');
    const keyed = { 'Idempotency-Key': 'same-trace', 'X-Request-Id': 'trace-abc' };
    const first = await createOrigin('one', keyed);
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    expect(await originsNamed('one')).toHaveLength(0);
    // Any request may carry any X-Request-Id: this one is no event of the first.
    const other = await createOrigin('two', { 'X-Request-Id': 'trace-abc' });
    expect(other.status, JSON.stringify(other.body)).toBe(201);

    await lockRunsOut('same-trace');
    const retry = await createOrigin('one', keyed);
    expect(retry.status, JSON.stringify(retry.body)).toBe(201);
    expect(await originsNamed('one')).toHaveLength(1);
    expect(await originsNamed('two')).toHaveLength(1);
  });

  it('its session commits the events after the lock ended: the retry waits for it and answers 409 idempotency_answer_lost, never a second run', async () => {
    plan.push('held');
    const keyed = { 'Idempotency-Key': 'late-commit' };
    const first = await createOrigin('late', keyed);
    expect(first.status, JSON.stringify(first.body)).toBe(503);
    const [session] = held.splice(0);
    if (!session) throw new Error('no held append');
    const attempt = (
      await lossy.db.pool.query<{ attempt_id: string }>(
        'select attempt_id from control_plane_idempotency_keys where key = $1',
        ['late-commit'],
      )
    ).rows[0]?.attempt_id;
    if (!attempt) throw new Error('no attempt holds the key');

    // The lock runs out and the retry comes while the first attempt's append is still uncommitted.
    let answer: Awaited<ReturnType<typeof createOrigin>>;
    try {
      const expired = tracked(lockRunsOut('late-commit'));
      await waitUntil(
        'the lock has run out, or waits for the first attempt',
        async () => expired.settled() || (await waitingForALock(lossy.db.url, 'locked_until')).length > 0,
      );
      const retry = tracked(createOrigin('late', keyed));
      await waitUntil(
        'the retry has answered, or waits for the first attempt',
        async () =>
          retry.settled() ||
          (await waitingForALock(lossy.db.url, 'control_plane_idempotency_keys')).length > 1 ||
          (await waitingForALock(lossy.db.url, 'event_store_append')).length > 0,
      );
      await session.query('commit');
      await expired.promise;
      answer = await retry.promise;
    } finally {
      await session.end();
    }

    const stored = await originsNamed('late');
    expect(stored).toHaveLength(1);
    expect(answer.status, JSON.stringify(answer.body)).toBe(409);
    expect(json(answer)['error']).toMatchObject({ code: 'idempotency_answer_lost' });
    expect(answer.headers.get('x-event-position')).toBe(stored[0]?.position.toString());

    // And an append of that attempt that comes later still is refused: the key is no longer its.
    const late = await lossy.store
      .appendToStream('late-after-all', [
        {
          type: 'OriginCreated',
          data: {},
          metadata: {
            actor: PLATFORM_ADMIN,
            tenant_id: tenant,
            correlation_id: 'late',
            causation_id: null,
            occurred_at: new Date().toISOString(),
            schema_version: 1,
            idempotency_attempt: attempt,
          },
        },
      ])
      .catch((error: unknown) => error);
    expect(late).toMatchObject({ code: 'VE423' });
  });
});

describe('a command whose connection is cut while its append waits for a lock (its session lives on)', () => {
  let proxy: TcpProxy;
  let cut: ControlPlaneHarness;
  let tenant: string;

  beforeAll(async () => {
    proxy = await startTcpProxy(TEST_INFRA.databaseUrl);
    cut = await startControlPlane({ connectThrough: (url) => proxy.urlFor(url) });
    const created = await cut.request('POST', '/api/v1/tenants', {
      body: { name: 'proxied', subdomain: 'proxied' },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    tenant = json(created)['id'] as string;
  });
  afterAll(async () => {
    await proxy?.close();
    await cut?.close();
  });

  const issued = async () =>
    (await cut.allEvents()).filter(
      (event) => event.type === 'ApiKeyIssued' && (event.data as { tenant_id: string }).tenant_id === tenant,
    );
  const appendsWaiting = () => waitingForALock(cut.db.url, 'event_store_append');

  it('the same Idempotency-Key never issues the API key twice, whatever the first request answers', async () => {
    // Another transaction holds the event-store position: every append waits.
    const blocker = new pg.Client({ connectionString: cut.db.url });
    await blocker.connect();
    await blocker.query('begin');
    await blocker.query('update event_store_position set value = value');
    try {
      const issue = () =>
        cut.request('POST', '/api/v1/api-keys', {
          headers: { 'Idempotency-Key': 'cut-while-waiting' },
          body: { tenant_id: tenant, name: 'ci' },
        });
      const first = tracked(issue());
      await waitUntil('the first append waits', async () => (await appendsWaiting()).length === 1);
      const [firstSession] = await appendsWaiting();
      // A proxy drops the control plane's side; PostgreSQL hears nothing, the session waits on.
      proxy.cutClientSide();
      await waitUntil(
        'the first request answers, or its append was sent again',
        async () => first.settled() || !(await appendsWaiting()).includes(firstSession ?? -1),
      );

      // Its lock runs out (30 s), and the client sends it again.
      await cut.db.pool.query(
        `update control_plane_idempotency_keys set locked_until = now() - interval '1 second' where key = $1`,
        ['cut-while-waiting'],
      );
      const retry = tracked(issue());
      // An API key create counts and appends holding its tenant's lock, so the retry's append cannot
      // wait beside the first one's: it has taken the key over once the key is locked again.
      await waitUntil('the retry answers, or has taken the key over', async () => {
        if (retry.settled()) return true;
        const { rows } = await cut.db.pool.query<{ taken: boolean }>(
          'select locked_until > now() as taken from control_plane_idempotency_keys where key = $1',
          ['cut-while-waiting'],
        );
        return rows[0]?.taken === true;
      });
      await blocker.query('commit');
      const answers = [await first.promise, await retry.promise];

      expect(await issued()).toHaveLength(1);
      const applied = answers.filter((answer) => answer.status === 201);
      expect(applied, JSON.stringify(answers.map((answer) => [answer.status, answer.body]))).toHaveLength(1);
      // The other one was refused (a later request took its key over) or could not tell (503).
      expect([409, 503]).toContain(answers.find((answer) => answer.status !== 201)?.status);
      // The key answers what was applied from now on.
      const replay = await issue();
      expect(replay.status, JSON.stringify(replay.body)).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(json(replay)['id']).toBe(json(applied[0] as Parameters<typeof json>[0])['id']);
      expect(await issued()).toHaveLength(1);
    } finally {
      await blocker.end();
    }
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
