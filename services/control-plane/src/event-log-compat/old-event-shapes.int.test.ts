import { randomUUID } from 'node:crypto';
import { foldSnapshotEvent, type SnapshotState } from '@vantageedge/projections/snapshots/fold';
import { isControlPlaneEvent } from '@vantageedge/shared/domain/events';
import { tenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlaneHarness, json, startControlPlane } from '../testing/control-plane-harness.js';
import { OLD_RELEASES, type OldTenantIds } from './old-event-shapes.js';
import { writeStoredLog } from './recorded-log.js';

/**
 * A tenant whose events an earlier release wrote (old-event-shapes.ts: one entry per release) is a
 * tenant like any other: its config, history and audit log read, its resources take new commands, its
 * gateway snapshot is one a gateway accepts, and it rolls back to its config of that release.
 */

let h: ControlPlaneHarness;

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
}, 60_000);

afterAll(async () => {
  await h?.close();
});

const caughtUp = async () => ({ 'x-min-position': (await h.store.headPosition()).toString() });

/** The tenant's gateway snapshot as the snapshot projector folds it, checked as a gateway checks it. */
async function gatewaySnapshot(tenantId: string) {
  let state: SnapshotState | undefined;
  for (const event of await h.store.readAll()) {
    if (!isControlPlaneEvent(event) || event.metadata.tenant_id !== tenantId) continue;
    state = foldSnapshotEvent(state, event);
  }
  expect(state?.status).toBe('live');
  return tenantSnapshot.parse(state?.status === 'live' ? state.snapshot : undefined);
}

describe.each(OLD_RELEASES)('a tenant written by release $commit', (release) => {
  const ids: OldTenantIds = {
    tenantId: randomUUID(),
    originId: randomUUID(),
    routeId: randomUUID(),
    apiKeyId: randomUUID(),
    subdomain: `old-${release.commit}`,
  };
  const config = (query = '') => `/api/v1/tenants/${ids.tenantId}/config${query}`;
  let oldPosition: string;

  beforeAll(async () => {
    await writeStoredLog(h.store, release.events(ids, new Date().toISOString()));
    oldPosition = (await h.store.headPosition()).toString();
  });

  it('reads as the release wrote it: the tenant, its resources, its config and its gateway snapshot', async () => {
    const headers = await caughtUp();
    for (const path of [
      `/api/v1/tenants/${ids.tenantId}`,
      `/api/v1/origins/${ids.originId}`,
      `/api/v1/routes/${ids.routeId}`,
      `/api/v1/api-keys/${ids.apiKeyId}`,
    ]) {
      const response = await h.request('GET', path, { headers });
      expect(response.status, `${path}: ${JSON.stringify(response.body)}`).toBe(200);
    }
    const current = await h.request('GET', config(), { headers });
    expect(current.status, JSON.stringify(current.body)).toBe(200);
    const body = json(current) as { routes: { id: string }[]; origins: { id: string }[] };
    expect(body.routes.map((route) => route.id)).toEqual([ids.routeId]);
    expect(body.origins.map((origin) => origin.id)).toEqual([ids.originId]);

    const explained = await h.request('POST', `/api/v1/tenants/${ids.tenantId}/explain`, {
      body: { method: 'GET', host: `${ids.subdomain}.vantageedge.dev`, path: '/users/1' },
    });
    expect(explained.status, JSON.stringify(explained.body)).toBe(200);
    expect(JSON.stringify(explained.body)).toContain(ids.routeId);

    const snapshot = await gatewaySnapshot(ids.tenantId);
    expect(snapshot.routes.map((route) => route.id)).toEqual([ids.routeId]);
    expect(snapshot.origins.map((origin) => origin.id)).toEqual([ids.originId]);
    expect(snapshot.api_keys.map((key) => key.id)).toEqual([ids.apiKeyId]);
  });

  it('shows each resource as its config and the gateways have it, every later field at its default', async () => {
    const headers = await caughtUp();
    const current = json(await h.request('GET', config(), { headers })) as {
      tenant: { settings: unknown };
      routes: Record<string, unknown>[];
      origins: Record<string, unknown>[];
    };
    const tenant = json(await h.request('GET', `/api/v1/tenants/${ids.tenantId}`, { headers }));
    expect(tenant['settings']).toEqual(current.tenant.settings);
    const { id: _route, ...route } = current.routes[0] ?? {};
    expect(json(await h.request('GET', `/api/v1/routes/${ids.routeId}`, { headers }))).toMatchObject(route);
    const { id: _origin, ...origin } = current.origins[0] ?? {};
    expect(json(await h.request('GET', `/api/v1/origins/${ids.originId}`, { headers }))).toMatchObject(
      origin,
    );
  });

  it('records nothing for a change to the values a resource already has', async () => {
    const headers = await caughtUp();
    const route = json(await h.request('GET', `/api/v1/routes/${ids.routeId}`, { headers }));
    const start = await h.store.headPosition();
    const unchanged = await h.request('PATCH', `/api/v1/routes/${ids.routeId}`, {
      body: {
        preserve_host: route['preserve_host'],
        websocket_token: route['websocket_token'],
        match: route['match'],
        cache_policy: route['cache_policy'],
      },
    });
    expect(unchanged.status, JSON.stringify(unchanged.body)).toBe(200);
    expect(await h.store.headPosition()).toBe(start);
  });

  it('applies its own config document as a change of nothing', async () => {
    const read = await h.request('GET', config('/document'), { headers: await caughtUp() });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    const document = json(read)['document'];
    const plan = await h.request('POST', config('/plan'), { body: document });
    expect(plan.status, JSON.stringify(plan.body)).toBe(200);
    expect(json(plan)['changes']).toEqual([]);
    const start = await h.store.headPosition();
    const applied = await h.request('POST', config('/apply'), { body: document });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    expect(json(applied)['changes']).toEqual([]);
    expect(await h.store.headPosition()).toBe(start);
  });

  it('takes new commands on each old resource', async () => {
    const changes: [string, Record<string, unknown>][] = [
      [`/api/v1/tenants/${ids.tenantId}`, { name: 'Renamed' }],
      [`/api/v1/origins/${ids.originId}`, { timeout_seconds: 12 }],
      [`/api/v1/routes/${ids.routeId}`, { path_pattern: '/people/*', priority: 3 }],
      [`/api/v1/api-keys/${ids.apiKeyId}`, { quota: { requests_per_day: 1000 } }],
    ];
    for (const [path, body] of changes) {
      const response = await h.request('PATCH', path, { body });
      expect(response.status, `PATCH ${path}: ${JSON.stringify(response.body)}`).toBe(200);
    }
    const route = await h.request('POST', '/api/v1/routes', {
      body: { tenant_id: ids.tenantId, origin_id: ids.originId, path_pattern: '/new/*', auth_mode: 'public' },
    });
    expect(route.status, JSON.stringify(route.body)).toBe(201);
    const tenantSettings = await h.request('PATCH', `/api/v1/tenants/${ids.tenantId}`, {
      body: { settings: { rate_limit: { requests_per_second: 10 } } },
    });
    expect(tenantSettings.status, JSON.stringify(tenantSettings.body)).toBe(200);

    const snapshot = await gatewaySnapshot(ids.tenantId);
    expect(snapshot.routes.map((r) => r.path_pattern).sort()).toEqual(['/new/*', '/people/*']);
    expect(snapshot.origins[0]?.timeout_seconds).toBe(12);
  });

  it('shows its config at the old position, the diff since and the history', async () => {
    const headers = await caughtUp();
    const then = await h.request('GET', config(`?at_position=${oldPosition}`), { headers });
    expect(then.status, JSON.stringify(then.body)).toBe(200);
    const routes = (json(then) as { routes: { id: string; path_pattern: string }[] }).routes;
    expect(routes.map((route) => [route.id, route.path_pattern])).toEqual([[ids.routeId, '/users/*']]);

    const diff = await h.request('GET', config(`/diff?from=${oldPosition}`), { headers });
    expect(diff.status, JSON.stringify(diff.body)).toBe(200);
    expect(JSON.stringify(json(diff)['changes'])).toContain('/people/*');

    const history = await h.request('GET', config('/history'), { headers });
    expect(history.status, JSON.stringify(history.body)).toBe(200);
    const audit = await h.request('GET', `/api/v1/audit-log?tenant_id=${ids.tenantId}`, { headers });
    expect(audit.status, JSON.stringify(audit.body)).toBe(200);
  });

  it('rolls back to its config of that release, to a snapshot a gateway accepts', async () => {
    const rollback = await h.request('POST', config('/rollback'), {
      body: { to_position: oldPosition },
      headers: await caughtUp(),
    });
    expect(rollback.status, JSON.stringify(rollback.body)).toBe(200);

    const snapshot = await gatewaySnapshot(ids.tenantId);
    expect(snapshot.routes.map((route) => [route.id, route.path_pattern])).toEqual([
      [ids.routeId, '/users/*'],
    ]);
    expect(snapshot.origins.map((origin) => [origin.id, origin.timeout_seconds])).toEqual([
      [ids.originId, 30],
    ]);
    const headers = await caughtUp();
    const now = await h.request('GET', config(), { headers });
    const then = await h.request('GET', config(`?at_position=${oldPosition}`), { headers });
    const settingsOf = (response: typeof now) => (json(response)['tenant'] as { settings: unknown }).settings;
    expect(settingsOf(now)).toEqual(settingsOf(then));
  });
});
