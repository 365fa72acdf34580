import { streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Regression tests: a config apply or rollback plans its steps from the tenant's config, then runs them
 * one by one, while single-resource commands (a route PATCH or DELETE, which then took no tenant lock)
 * went on beside it. A step appended the fields its plan changed onto whatever the resource had become: a route
 * patched meanwhile ended as neither the document nor the PATCH left it (a lost update both answered
 * 200), and a route deleted meanwhile made the apply answer 404 `not_found`, as for an unknown tenant.
 */
describe('config changes racing single-resource commands', () => {
  let cp: ControlPlaneHarness;
  const post = (path: string, body: unknown) => cp.request('POST', path, { body });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  const errorOf = (response: ApiResponse) => json(response)['error'] as { code: string; message: string };
  let tenants = 0;

  interface Route {
    id: string;
    max_body_bytes: number | null;
    require_tenant_org: boolean;
  }
  /** A tenant with one origin and `count` routes (/r0/* …). */
  const newTenant = async (count: number) => {
    tenants += 1;
    const subdomain = `cfg-race-${tenants}`;
    const created = await post('/api/v1/tenants', { name: `cfg race ${tenants}`, subdomain });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const tenant = idOf(created);
    const origin = idOf(
      await post('/api/v1/origins', { tenant_id: tenant, name: 'o', url: 'https://o.example.com' }),
    );
    const routes: string[] = [];
    for (let i = 0; i < count; i++) {
      const route = await post('/api/v1/routes', {
        tenant_id: tenant,
        origin_id: origin,
        path_pattern: `/r${i}/*`,
        auth_mode: 'public',
      });
      expect(route.status, JSON.stringify(route.body)).toBe(201);
      routes.push(idOf(route));
    }
    return { tenant, subdomain, routes };
  };
  /** The tenant's routes as the event store has them now. */
  const routesOf = async (tenant: string) => {
    const answer = await cp.request('GET', `/api/v1/tenants/${tenant}/config`, {
      headers: { 'x-min-position': (await cp.store.headPosition()).toString() },
    });
    expect(answer.status, JSON.stringify(answer.body)).toBe(200);
    return json(answer)['routes'] as Route[];
  };
  const expectDoneOrConflict = (answer: ApiResponse) => {
    expect([200, 409], JSON.stringify(answer.body)).toContain(answer.status);
    if (answer.status === 409) {
      expect(errorOf(answer).code).toBe('conflict');
      expect(answer.headers.get('retry-after')).not.toBeNull();
    }
  };

  beforeAll(async () => {
    cp = await startControlPlane({ withReadSide: true });
  });
  afterAll(async () => {
    await cp?.close();
  });

  it('leaves each route patched during a rollback as the rollback or the PATCH left it, never a mix', async () => {
    for (let round = 0; round < 5; round++) {
      const { tenant, routes } = await newTenant(6);
      const before = (await cp.store.headPosition()).toString();
      for (const id of routes) {
        const patched = await cp.request('PATCH', `/api/v1/routes/${id}`, { body: { max_body_bytes: 1500 } });
        expect(patched.status, JSON.stringify(patched.body)).toBe(200);
      }
      const [rollback, ...patches] = await Promise.all([
        post(`/api/v1/tenants/${tenant}/config/rollback`, { to_position: before }),
        ...routes.map((id) =>
          cp.request('PATCH', `/api/v1/routes/${id}`, {
            body: { max_body_bytes: 2500, require_tenant_org: false },
          }),
        ),
      ]);
      expectDoneOrConflict(rollback!);
      for (const patch of patches) expect(patch.status, JSON.stringify(patch.body)).toBe(200);
      for (const route of await routesOf(tenant)) {
        // Rolled back after the PATCH, or patched after the rollback: either whole.
        expect([
          [null, true],
          [2500, false],
        ]).toContainEqual([route.max_body_bytes, route.require_tenant_org]);
      }
    }
  });

  it('leaves each origin patched during an apply as the apply or the PATCH left it, never a mix', async () => {
    for (let round = 0; round < 5; round++) {
      const { tenant, subdomain } = await newTenant(0);
      const names = ['a', 'b', 'c', 'd', 'e', 'f'];
      const origins: string[] = [];
      for (const name of names) {
        origins.push(
          idOf(
            await post('/api/v1/origins', { tenant_id: tenant, name, url: `https://${name}.example.com` }),
          ),
        );
      }
      const configOrigins = async () =>
        json(
          await cp.request('GET', `/api/v1/tenants/${tenant}/config`, {
            headers: { 'x-min-position': (await cp.store.headPosition()).toString() },
          }),
        )['origins'] as Array<{ name: string; timeout_seconds: number; health_check_path: string | null }>;
      const untouched = (await configOrigins())[0]!.health_check_path;
      const [applied, ...patches] = await Promise.all([
        post(`/api/v1/tenants/${tenant}/config/apply`, {
          tenant: { name: `cfg race ${tenants}`, subdomain },
          origins: ['o', ...names].map((name) => ({
            name,
            url: `https://${name}.example.com`,
            timeout_seconds: 31,
          })),
          routes: [],
        }),
        ...origins.map((id) =>
          cp.request('PATCH', `/api/v1/origins/${id}`, {
            body: { timeout_seconds: 45, health_check_path: '/patched' },
          }),
        ),
      ]);
      expectDoneOrConflict(applied!);
      for (const patch of patches) expect(patch.status, JSON.stringify(patch.body)).toBe(200);
      for (const origin of (await configOrigins()).filter((o) => o.name !== 'o')) {
        expect([
          [31, untouched],
          [45, '/patched'],
        ]).toContainEqual([origin.timeout_seconds, origin.health_check_path]);
      }
    }
  });
});

describe('a config apply meeting a command between its steps', () => {
  let cp: ControlPlaneHarness;
  /** Runs after the app appends an event of this type, before the append returns to the command. */
  const afterAppend = new Map<string, () => Promise<void>>();

  beforeAll(async () => {
    cp = await startControlPlane({
      withReadSide: true,
      wrapStore: (store: EventStore): EventStore => ({
        ...store,
        appendToStream: async (stream, events, options) => {
          const result = await store.appendToStream(stream, events, options);
          for (const event of events) {
            const hook = afterAppend.get(event.type);
            afterAppend.delete(event.type);
            await hook?.();
          }
          return result;
        },
        readStream: (stream, options) => store.readStream(stream, options),
        readAll: (options) => store.readAll(options),
        subscribeToAll: (options) => store.subscribeToAll(options),
        headPosition: () => store.headPosition(),
        reservationHolder: (value) => store.reservationHolder(value),
        close: () => store.close(),
      }),
    });
  });
  afterAll(async () => {
    await cp?.close();
  });

  const post = (path: string, body: unknown) => cp.request('POST', path, { body });
  const idOf = (response: ApiResponse) => json(response)['id'] as string;
  let tenants = 0;
  /** A tenant with origin `o` and a route on it for each pattern. */
  const newTenant = async (patterns: string[]) => {
    tenants += 1;
    const tenant = { name: `cfg step ${tenants}`, subdomain: `cfg-step-${tenants}` };
    const id = idOf(await post('/api/v1/tenants', tenant));
    const origin = idOf(
      await post('/api/v1/origins', { tenant_id: id, name: 'o', url: 'https://o.example.com' }),
    );
    const routes: string[] = [];
    for (const path_pattern of patterns) {
      routes.push(
        idOf(
          await post('/api/v1/routes', {
            tenant_id: id,
            origin_id: origin,
            path_pattern,
            auth_mode: 'public',
          }),
        ),
      );
    }
    return { id, tenant, origin, routes };
  };
  /**
   * Deletes the routes or origins once the app appended an event of `type`, as a control plane of an
   * earlier release, still running during a rolling deploy, does: without the tenant's lock (a DELETE
   * sent to this one waits for the apply to end), so the deletion lands between the apply's steps.
   */
  const deleteOnce = (type: string, tenantId: string, deleted: Array<['route' | 'origin', string]>) =>
    afterAppend.set(type, async () => {
      for (const [kind, id] of deleted) {
        const stream = kind === 'route' ? streamName.route(id) : streamName.origin(id);
        if ((await cp.store.readStream(stream)).at(-1)?.type.endsWith('Deleted')) continue;
        await cp.store.appendToStream(stream, [
          {
            type: kind === 'route' ? 'RouteDeleted' : 'OriginDeleted',
            data:
              kind === 'route'
                ? { route_id: id, tenant_id: tenantId }
                : { origin_id: id, tenant_id: tenantId },
            metadata: {
              actor: 'user_of_an_earlier_release',
              tenant_id: tenantId,
              correlation_id: `delete-${id}`,
              causation_id: null,
              occurred_at: new Date().toISOString(),
              schema_version: 1,
            },
          },
        ]);
      }
    });
  const errorOf = (response: ApiResponse) => json(response)['error'] as { code: string; message: string };

  it('answers 409 conflict naming a route it updates that was deleted meanwhile, not 404', async () => {
    const { id, tenant, routes } = await newTenant(['/a/*', '/b/*']);
    // The routes are updated in the document's order: the second is deleted once the first is updated.
    deleteOnce('RouteUpdated', id, [['route', routes[1]!]]);
    const applied = await post(`/api/v1/tenants/${id}/config/apply`, {
      tenant,
      origins: [{ name: 'o', url: 'https://o.example.com' }],
      routes: ['/a/*', '/b/*'].map((path_pattern) => ({
        origin: 'o',
        path_pattern,
        auth_mode: 'public',
        max_body_bytes: 2000,
      })),
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(409);
    expect(errorOf(applied).code).toBe('conflict');
    expect(errorOf(applied).message).toContain(`route ${routes[1]} was deleted`);
  });

  it('finishes an apply whose routes to remove another command removed first', async () => {
    const { id, tenant, routes } = await newTenant(['/a/*', '/b/*']);
    deleteOnce(
      'RouteDeleted',
      id,
      routes.map((route) => ['route', route]),
    );
    const applied = await post(`/api/v1/tenants/${id}/config/apply`, {
      tenant,
      origins: [{ name: 'o', url: 'https://o.example.com' }],
      routes: [],
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(200);
    const config = await cp.request('GET', `/api/v1/tenants/${id}/config`, {
      headers: { 'x-min-position': (await cp.store.headPosition()).toString() },
    });
    expect(json(config)['routes']).toEqual([]);
  });

  it('answers 409 conflict naming the origin its new routes name that was deleted meanwhile, not 404', async () => {
    const { id, tenant, origin } = await newTenant([]);
    // The apply adds an origin before its routes: the origin its routes name is deleted right then.
    deleteOnce('OriginCreated', id, [['origin', origin]]);
    const applied = await post(`/api/v1/tenants/${id}/config/apply`, {
      tenant,
      origins: [
        { id: origin, name: 'o', url: 'https://o.example.com' },
        { name: 'n', url: 'https://n.example.com' },
      ],
      routes: [{ origin: 'o', path_pattern: '/new/*', auth_mode: 'public' }],
    });
    expect(applied.status, JSON.stringify(applied.body)).toBe(409);
    expect(errorOf(applied).code).toBe('conflict');
    expect(errorOf(applied).message).toContain(`origin ${origin} was deleted`);
  });
});
