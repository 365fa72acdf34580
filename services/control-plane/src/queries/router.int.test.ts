import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readReadModelsPosition } from '@vantageedge/projections/read-models/position';
import { startReadModelProjector } from '@vantageedge/projections/read-models/projector';
import { eventually } from '@vantageedge/projections/read-models/testing/compare';
import type { Projector } from '@vantageedge/projections/runner/projector';
import { type ControlPlaneNewEvent, streamName } from '@vantageedge/shared/domain/events';
import { originConfig, routeConfig, tenantSettings } from '@vantageedge/shared/domain/gateway-config';
import type { EventMetadata } from '@vantageedge/shared/event-store/port';
import { PostgresEventStore } from '@vantageedge/shared/event-store/postgres/postgres-event-store';
import { createTestDatabase, type TestDatabase } from '@vantageedge/shared/testing/postgres';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthorizer } from '../auth/authorize.js';
import type { Caller } from '../auth/caller.js';
import { createErrorHandler } from '../http/errors.js';
import { createQueryRouter } from './router.js';
import { createTenantDirectory } from './tenant-directory.js';

// Two tenants: acme (org_acme, alice owner, victor viewer) and globex (org_globex), one deleted tenant.
const acme = randomUUID();
const globex = randomUUID();
const gone = randomUUID();
const acmeOrigin = randomUUID();
const acmeRoute = randomUUID();
const globexRoute = randomUUID();
const goneRoute = randomUUID();
const acmeKey = randomUUID();
const KEY_HASH = 'f'.repeat(64);

const callers = {
  admin: { userId: 'user_platform', isPlatformAdmin: true, orgId: null, orgRole: null },
  alice: { userId: 'user_alice', isPlatformAdmin: false, orgId: null, orgRole: null },
  victor: { userId: 'user_victor', isPlatformAdmin: false, orgId: null, orgRole: null },
  globexAdmin: { userId: 'user_gina', isPlatformAdmin: false, orgId: 'org_globex', orgRole: 'org:admin' },
  stranger: { userId: 'user_nobody', isPlatformAdmin: false, orgId: 'org_other', orgRole: 'org:admin' },
} satisfies Record<string, Caller>;
type CallerName = keyof typeof callers;

let database: TestDatabase;
let store: PostgresEventStore;
let projector: Projector;
let server: Server;
let baseUrl: string;
let clock = Date.parse('2026-02-01T00:00:00.000Z');

const meta = (tenantId: string, actor = 'user_platform'): EventMetadata => {
  clock += 60_000;
  return {
    actor,
    tenant_id: tenantId,
    correlation_id: randomUUID(),
    causation_id: null,
    occurred_at: new Date(clock).toISOString(),
    schema_version: 1,
  };
};

async function append(stream: string, ...events: ControlPlaneNewEvent[]): Promise<bigint> {
  return (await store.appendToStream(stream, events)).position;
}

function tenantCreated(id: string, subdomain: string, org: string | null): ControlPlaneNewEvent {
  return {
    type: 'TenantCreated',
    data: {
      tenant_id: id,
      name: subdomain,
      subdomain,
      clerk_org_id: org,
      settings: tenantSettings.parse({}),
    },
    metadata: meta(id),
  };
}

function routeState(tenantId: string, id: string, origin: string, path: string) {
  const { id: _id, ...config } = routeConfig.parse({
    id,
    origin_id: origin,
    path_pattern: path,
    auth_mode: 'public',
  });
  return { ...config, route_id: id, tenant_id: tenantId };
}

async function get(path: string, as: CallerName, headers: Record<string, string> = {}) {
  const response = await fetch(`${baseUrl}${path}`, { headers: { 'x-test-caller': as, ...headers } });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : null };
}

let lastPosition = 0n;

beforeAll(async () => {
  database = await createTestDatabase();
  store = new PostgresEventStore({ pool: database.pool });
  await append(streamName.tenant(acme), tenantCreated(acme, 'acme', 'org_acme'));
  await append(streamName.tenant(globex), tenantCreated(globex, 'globex', 'org_globex'));
  await append(streamName.tenant(gone), tenantCreated(gone, 'gone', null));
  for (const [user, role] of [
    ['user_alice', 'owner'],
    ['user_victor', 'viewer'],
  ] as const) {
    const id = randomUUID();
    await append(streamName.user(id), {
      type: 'UserCreated',
      data: { user_id: id, tenant_id: acme, clerk_user_id: user, email: `${user}@acme.test`, role },
      metadata: meta(acme),
    });
  }
  const { id: _id, ...origin } = originConfig.parse({
    id: acmeOrigin,
    name: 'backend',
    targets: [{ url: 'https://api.acme.test' }],
  });
  await append(streamName.origin(acmeOrigin), {
    type: 'OriginCreated',
    data: { ...origin, origin_id: acmeOrigin, tenant_id: acme },
    metadata: meta(acme),
  });
  await append(
    streamName.route(acmeRoute),
    {
      type: 'RouteCreated',
      data: routeState(acme, acmeRoute, acmeOrigin, '/v1/*'),
      metadata: meta(acme, 'user_alice'),
    },
    {
      type: 'RouteUpdated',
      data: { ...routeState(acme, acmeRoute, acmeOrigin, '/v2/*'), changed_fields: ['path_pattern'] },
      metadata: meta(acme, 'user_alice'),
    },
  );
  await append(streamName.route(globexRoute), {
    type: 'RouteCreated',
    data: routeState(globex, globexRoute, randomUUID(), '/g/*'),
    metadata: meta(globex),
  });
  await append(streamName.route(goneRoute), {
    type: 'RouteCreated',
    data: routeState(gone, goneRoute, randomUUID(), '/x/*'),
    metadata: meta(gone),
  });
  await append(streamName.apiKey(acmeKey), {
    type: 'ApiKeyIssued',
    data: {
      api_key_id: acmeKey,
      tenant_id: acme,
      name: 'ci',
      key_hash: KEY_HASH,
      key_prefix: 've_live_ab12',
      scopes: ['read'],
      expires_at: null,
    },
    metadata: meta(acme, 'user_alice'),
  });
  lastPosition = await append(streamName.tenant(gone), {
    type: 'TenantDeleted',
    data: { tenant_id: gone },
    metadata: meta(gone),
  });

  projector = startReadModelProjector({ store, pool: database.pool, batchSize: 100 });
  await eventually(async () => (await readReadModelsPosition(database.pool)) === lastPosition);

  const authorizer = createAuthorizer(createTenantDirectory(database.pool));
  const app = express();
  app.use((req, res, next) => {
    const name = req.get('x-test-caller') as CallerName | undefined;
    if (name && callers[name]) res.locals['caller'] = callers[name];
    next();
  });
  // Long enough for a loaded machine's projector to reach a fresh write; the lag test waits it out.
  app.use(
    createQueryRouter({ pool: database.pool, authorizer, eventStore: store, minPositionWaitMs: 5_000 }),
  );
  app.use(createErrorHandler());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await projector?.stop();
  await store?.close();
  await database?.drop();
});

describe('GET resources from the read models', () => {
  it('serves a route in the agreed shape with its stream revision as ETag, and 304 when unchanged', async () => {
    const response = await get(`/api/v1/routes/${acmeRoute}`, 'alice');
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toBe('"1"');
    expect(response.body).toMatchObject({
      id: acmeRoute,
      tenant_id: acme,
      origin_id: acmeOrigin,
      path_pattern: '/v2/*',
      methods: [],
      priority: 0,
      auth_mode: 'public',
      required_scopes: [],
      require_tenant_org: true,
      strip_prefix: null,
      rate_limit: null,
      cache_policy: null,
    });
    expect(Date.parse(response.body.updated_at)).toBeGreaterThan(Date.parse(response.body.created_at));
    const again = await get(`/api/v1/routes/${acmeRoute}`, 'alice', { 'If-None-Match': '"1"' });
    expect(again.status).toBe(304);
  });

  it('serves origins with url = first target and api keys without their hash', async () => {
    const origin = await get(`/api/v1/origins/${acmeOrigin}`, 'victor');
    expect(origin.body).toMatchObject({
      url: 'https://api.acme.test',
      timeout_seconds: 30,
      health_check_path: '/health',
    });
    expect(origin.body.targets).toEqual([{ url: 'https://api.acme.test', weight: 1 }]);
    const key = await get(`/api/v1/api-keys/${acmeKey}`, 'alice');
    expect(Object.keys(key.body).sort()).toEqual([
      'created_at',
      'expires_at',
      'id',
      'key_prefix',
      'name',
      'quota',
      'quota_usage',
      'replaced_by',
      'revoked_at',
      'scopes',
      'tags',
      'tenant_id',
      'updated_at',
    ]);
    expect(JSON.stringify(key.body)).not.toContain(KEY_HASH);
  });

  it("answers 404 for another tenant's resource, for a deleted tenant and its children", async () => {
    expect((await get(`/api/v1/routes/${globexRoute}`, 'alice')).status).toBe(404);
    expect((await get(`/api/v1/tenants/${globex}`, 'alice')).body.error.code).toBe('not_found');
    expect((await get(`/api/v1/routes?tenant_id=${globex}`, 'alice')).status).toBe(404);
    expect((await get(`/api/v1/tenants/${gone}`, 'admin')).status).toBe(404);
    expect((await get(`/api/v1/routes/${goneRoute}`, 'admin')).status).toBe(404);
    expect((await get(`/api/v1/routes/${globexRoute}`, 'globexAdmin')).status).toBe(200);
  });

  it('lists only what the caller may see', async () => {
    const ids = async (path: string, as: CallerName) =>
      ((await get(path, as)).body.data as Array<{ id: string }>).map((item) => item.id);
    expect(await ids('/api/v1/tenants', 'admin')).toEqual([acme, globex]);
    expect(await ids('/api/v1/tenants', 'alice')).toEqual([acme]);
    expect(await ids('/api/v1/tenants', 'globexAdmin')).toEqual([globex]);
    expect(await ids('/api/v1/tenants', 'stranger')).toEqual([]);
    expect(await ids('/api/v1/routes', 'admin')).toEqual([acmeRoute, globexRoute]);
    expect(await ids('/api/v1/routes', 'victor')).toEqual([acmeRoute]);
    expect(await ids(`/api/v1/users?tenant_id=${acme}`, 'alice')).toHaveLength(2);
  });

  it('paginates with an opaque cursor', async () => {
    const first = await get('/api/v1/tenants?limit=1', 'admin');
    expect(first.body.data.map((t: { id: string }) => t.id)).toEqual([acme]);
    expect(first.body.next_cursor).toEqual(expect.any(String));
    const second = await get(`/api/v1/tenants?limit=1&cursor=${first.body.next_cursor}`, 'admin');
    expect(second.body).toMatchObject({ data: [{ id: globex, subdomain: 'globex' }], next_cursor: null });
  });

  it('rejects bad input with 400 validation_failed naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['/api/v1/routes?limit=0', 'limit'],
      ['/api/v1/routes?limit=abc', 'limit'],
      ['/api/v1/routes?cursor=%%%', 'cursor'],
      ['/api/v1/routes?tenant_id=nope', 'tenant_id'],
      ['/api/v1/routes?colour=blue', 'colour'],
      ['/api/v1/routes/not-a-uuid', 'id'],
      ['/api/v1/audit-log?from=yesterday', 'from'],
      ['/api/v1/audit-log?resource_type=planet', 'resource_type'],
    ];
    for (const [path, field] of cases) {
      const response = await get(path, 'admin');
      expect(response.status, path).toBe(400);
      expect(response.body.error.code, path).toBe('validation_failed');
      expect(
        response.body.error.details.map((d: { field: string }) => d.field),
        path,
      ).toContain(field);
    }
  });
});

describe('X-Min-Position (read your writes)', () => {
  it('waits for the projector to reach the position of a fresh write', async () => {
    const position = await append(streamName.route(acmeRoute), {
      type: 'RouteUpdated',
      data: { ...routeState(acme, acmeRoute, acmeOrigin, '/v3/*'), changed_fields: ['path_pattern'] },
      metadata: meta(acme, 'user_alice'),
    });
    const response = await get(`/api/v1/routes/${acmeRoute}`, 'alice', {
      'X-Min-Position': position.toString(),
    });
    expect(response.status).toBe(200);
    expect(response.body.path_pattern).toBe('/v3/*');
    expect(response.headers.get('etag')).toBe('"2"');
  });

  it('answers 400 for a malformed position', async () => {
    expect((await get('/api/v1/routes', 'alice', { 'X-Min-Position': '-1' })).status).toBe(400);
  });

  it('answers 400 naming the header for a position beyond the newest event', async () => {
    const response = await get(`/api/v1/routes/${acmeRoute}`, 'alice', { 'X-Min-Position': '999999999' });
    expect(response.status).toBe(400);
    expect(response.body.error.details).toEqual([
      { field: 'X-Min-Position', issue: expect.stringMatching(/^is beyond the newest event position/) },
    ]);
  });

  it('is ignored for a caller without access: the answer without it, at once', async () => {
    for (const path of [
      `/api/v1/routes/${acmeRoute}`,
      `/api/v1/routes?tenant_id=${acme}`,
      '/api/v1/tenants',
    ]) {
      const plain = await get(path, 'stranger');
      const held = await get(path, 'stranger', { 'X-Min-Position': '999999999' });
      expect({ status: held.status, body: held.body }, path).toEqual({
        status: plain.status,
        body: plain.body,
      });
    }
  });
});

describe('GET /api/v1/audit-log', () => {
  it('shows who did what, newest first, without secrets, filtered', async () => {
    const response = await get(
      `/api/v1/audit-log?tenant_id=${acme}&resource_type=route&resource_id=${acmeRoute}`,
      'alice',
    );
    expect(response.status).toBe(200);
    expect(response.body.data.map((e: { event_type: string }) => e.event_type)).toEqual([
      'RouteUpdated',
      'RouteUpdated',
      'RouteCreated',
    ]);
    expect(response.body.data[0]).toMatchObject({
      actor: 'user_alice',
      tenant_id: acme,
      resource_type: 'route',
    });
    const keys = await get(`/api/v1/audit-log?event_type=ApiKeyIssued`, 'admin');
    expect(keys.body.data).toHaveLength(1);
    expect(JSON.stringify(keys.body)).not.toContain(KEY_HASH);
    const byActor = await get(`/api/v1/audit-log?actor=user_alice&limit=2`, 'admin');
    expect(byActor.body.data).toHaveLength(2);
    const rest = await get(
      `/api/v1/audit-log?actor=user_alice&limit=2&cursor=${byActor.body.next_cursor}`,
      'admin',
    );
    // alice's events, newest first: the /v3 update, the key, the /v2 update, the creation
    expect(byActor.body.data.map((e: { event_type: string }) => e.event_type)).toEqual([
      'RouteUpdated',
      'ApiKeyIssued',
    ]);
    expect(rest.body.data.map((e: { event_type: string }) => e.event_type)).toEqual([
      'RouteUpdated',
      'RouteCreated',
    ]);
    expect(rest.body.next_cursor).toBeNull();
    const window = await get(`/api/v1/audit-log?from=2026-02-01T00:00:00Z&to=2026-02-01T00:02:30Z`, 'admin');
    expect(window.body.data.map((e: { event_type: string }) => e.event_type)).toEqual([
      'TenantCreated',
      'TenantCreated',
    ]);
  });

  // The usage endpoint answered 500 for dates at the ends of the 4-digit years; this range is compared
  // as epoch milliseconds, which PostgreSQL takes for any of them.
  it('answers dates at the ends of the 4-digit years, never 500', async () => {
    for (const query of [
      'from=0000-01-01T00:00:00Z',
      'to=0000-01-01T00:00:00%2B23:59',
      'from=9999-12-31T23:59:59-23:59',
      'to=9999-12-31T23:59:59Z',
    ]) {
      const response = await get(`/api/v1/audit-log?${query}`, 'admin');
      expect(response.status, query).toBe(200);
    }
  });

  it("lets tenant admins see only their tenant's entries, and not readers", async () => {
    const mine = await get('/api/v1/audit-log?limit=200', 'alice');
    expect(mine.body.data.length).toBeGreaterThan(0);
    expect(mine.body.data.every((e: { tenant_id: string }) => e.tenant_id === acme)).toBe(true);
    expect((await get(`/api/v1/audit-log?tenant_id=${globex}`, 'alice')).status).toBe(404);
    expect((await get(`/api/v1/audit-log?tenant_id=${acme}`, 'victor')).status).toBe(403);
    expect((await get('/api/v1/audit-log', 'victor')).body.data).toEqual([]);
  });
});

describe('POST /api/v1/admin/replay', () => {
  it('is for platform admins only', async () => {
    const response = await fetch(`${baseUrl}/api/v1/admin/replay`, {
      method: 'POST',
      headers: { 'x-test-caller': 'alice' },
    });
    expect(response.status).toBe(403);
  });

  it('rebuilds the read models and swaps them in while queries keep answering', async () => {
    const before = await get('/api/v1/routes', 'admin');
    const started = await fetch(`${baseUrl}/api/v1/admin/replay`, {
      method: 'POST',
      headers: { 'x-test-caller': 'admin' },
    });
    expect(started.status).toBe(202);
    let status = (await get('/api/v1/admin/replay', 'admin')).body.replay;
    while (status.status === 'running') {
      expect((await get('/api/v1/routes', 'admin')).body).toEqual(before.body);
      status = (await get('/api/v1/admin/replay', 'admin')).body.replay;
    }
    expect(status).toMatchObject({ status: 'succeeded', error: null });
    expect(BigInt(status.position)).toBeGreaterThanOrEqual(lastPosition);
    expect((await get('/api/v1/routes', 'admin')).body).toEqual(before.body);
  });
});

describe('POST /api/v1/admin/republish-snapshots', () => {
  it('is for platform admins only and changes nothing for anyone else', async () => {
    await database.pool.query(
      `insert into snapshot_state (tenant_id, version, status, snapshot, event_time, published_version)
       values ($1, 7, 'deleted', null, now(), 7)`,
      [gone],
    );
    const refused = await fetch(`${baseUrl}/api/v1/admin/republish-snapshots`, {
      method: 'POST',
      headers: { 'x-test-caller': 'alice' },
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('forbidden');
    const { rows } = await database.pool.query('select published_version from snapshot_state');
    expect(rows).toEqual([{ published_version: '7' }]);
  });

  it('queues every tenant snapshot for the snapshot projector to publish again', async () => {
    const response = await fetch(`${baseUrl}/api/v1/admin/republish-snapshots`, {
      method: 'POST',
      headers: { 'x-test-caller': 'admin' },
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toEqual({ republish: { queued_tenants: 1 } });
    const { rows } = await database.pool.query('select published_version from snapshot_state');
    expect(rows).toEqual([{ published_version: null }]);
  });
});

// Last: it records one more event of acme's route, which the tests above do not expect.
describe('X-Min-Position when the read models lag', () => {
  it('answers 503 not_caught_up with Retry-After when the projector does not get there', async () => {
    await projector.stop();
    try {
      const position = await append(streamName.route(acmeRoute), {
        type: 'RouteUpdated',
        data: { ...routeState(acme, acmeRoute, acmeOrigin, '/v4/*'), changed_fields: ['path_pattern'] },
        metadata: meta(acme, 'user_alice'),
      });
      const response = await get(`/api/v1/routes/${acmeRoute}`, 'alice', {
        'X-Min-Position': position.toString(),
      });
      expect(response.status).toBe(503);
      expect(response.body.error.code).toBe('not_caught_up');
      expect(response.headers.get('retry-after')).toBe('1');
    } finally {
      projector = startReadModelProjector({ store, pool: database.pool, batchSize: 100 });
    }
  });
});
