import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiResponse,
  type ControlPlaneHarness,
  json,
  startControlPlane,
} from '../testing/control-plane-harness.js';

/**
 * Through the admin API, with every tenant's config folded and kept by the control plane: a change is
 * in the very next explain and GET …/config (read-your-writes with X-Min-Position), and two tenants'
 * configs never mix.
 */

let h: ControlPlaneHarness;
const tenants: Record<string, { id: string; route: string; subdomain: string }> = {};

const position = (response: { headers: Headers }) => response.headers.get('x-event-position') ?? '';

async function tenantWithRoute(subdomain: string) {
  const tenant = await h.request('POST', '/api/v1/tenants', { body: { name: subdomain, subdomain } });
  const id = json(tenant)['id'] as string;
  const origin = await h.request('POST', '/api/v1/origins', {
    body: { tenant_id: id, name: 'api', url: 'http://127.0.0.1:9/' },
  });
  const route = await h.request('POST', '/api/v1/routes', {
    body: {
      tenant_id: id,
      origin_id: json(origin)['id'],
      path_pattern: '/users/*',
      methods: ['GET'],
      auth_mode: 'public',
    },
  });
  expect(route.status).toBe(201);
  return { id, route: json(route)['id'] as string, subdomain };
}

const explain = (tenant: { id: string; subdomain: string }, method: string) =>
  h.request('POST', `/api/v1/tenants/${tenant.id}/explain`, {
    body: { method, host: `${tenant.subdomain}.vantageedge.dev`, path: '/users/1' },
  });

const routesOf = (config: Record<string, unknown>) => config['routes'] as Array<Record<string, unknown>>;
const routeOf = (response: ApiResponse) => routesOf(json(response))[0];

beforeAll(async () => {
  h = await startControlPlane({ withReadSide: true });
  tenants['a'] = await tenantWithRoute('folds-a');
  tenants['b'] = await tenantWithRoute('folds-b');
  // Explain and the reads without X-Min-Position find the tenants in the read models: wait until they do.
  await h.readModelsCaughtUp();
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('the config a control plane keeps folded', () => {
  it('shows a change at once: read-your-writes on GET config and explain', async () => {
    const a = tenants['a']!;
    // Warm: explain and the config are folded and kept.
    expect(json(await explain(a, 'POST'))['decision']).not.toBe('proxied');
    expect(routeOf(await h.request('GET', `/api/v1/tenants/${a.id}/config`))?.['methods']).toEqual(['GET']);

    const patchedAt: string[] = [];
    for (const methods of [['GET', 'POST'], ['GET', 'POST', 'PUT'], ['DELETE']]) {
      const patched = await h.request('PATCH', `/api/v1/routes/${a.route}`, { body: { methods } });
      expect(patched.status).toBe(200);
      patchedAt.push(position(patched));
      const config = await h.request('GET', `/api/v1/tenants/${a.id}/config`, {
        headers: { 'X-Min-Position': position(patched) },
      });
      expect(config.status).toBe(200);
      expect(json(config)['version']).toBe(position(patched));
      expect(routeOf(config)?.['methods']).toEqual(methods);
      const explained = json(await explain(a, methods[0]!));
      expect(explained['version']).toBe(position(patched));
    }
    // An old position still answers with what it was.
    const old = await h.request('GET', `/api/v1/tenants/${a.id}/config?at_position=${patchedAt[0]}`);
    expect(routeOf(old)?.['methods']).toEqual(['GET', 'POST']);
    expect(routeOf(await h.request('GET', `/api/v1/tenants/${a.id}/config`))?.['methods']).toEqual([
      'DELETE',
    ]);
  });

  it('never answers one tenant with another’s config', async () => {
    const a = tenants['a']!;
    const b = tenants['b']!;
    const patched = await h.request('PATCH', `/api/v1/routes/${b.route}`, { body: { methods: ['PATCH'] } });
    expect(patched.status).toBe(200);
    const configA = json(await h.request('GET', `/api/v1/tenants/${a.id}/config`));
    const configB = json(
      await h.request('GET', `/api/v1/tenants/${b.id}/config`, {
        headers: { 'X-Min-Position': position(patched) },
      }),
    );
    expect(configA['tenant_id']).toBe(a.id);
    expect(configB['tenant_id']).toBe(b.id);
    expect(routesOf(configA)[0]?.['id']).toBe(a.route);
    expect(routesOf(configB)[0]?.['methods']).toEqual(['PATCH']);
    const explainedB = json(await explain(b, 'PATCH'));
    expect(explainedB['tenant_id']).toBe(b.id);
    expect(explainedB['version']).toBe(position(patched));
  });
});
