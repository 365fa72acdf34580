import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type GatewayReplica, startOrigin, stopAllServices, type TestOrigin, TestSystem } from './harness.js';
import { whenServedEverywhere } from './served-version.js';

/**
 * Regression test, through real processes, for tenant traffic reaching the platform itself: an origin
 * configured through the control plane at the gateway's admin listener returned its /status (every
 * tenant's id, subdomain and hosts). The control plane cannot know a gateway's ports, so the gateway
 * refuses the connection; the control plane refuses its own listener. Loopback origins are allowed
 * in this system (ORIGIN_BLOCKED_CIDRS without loopback, as in every e2e test), so the refusals below
 * are the own-listener rule, which holds whatever the setting.
 */
const SUBDOMAIN = 'ssrf';

let system: TestSystem;
let origin: TestOrigin;
let gateway: GatewayReplica;
let tenantId: string;

async function route(pathPattern: string, url: string): Promise<bigint> {
  const added = await system.create('/api/v1/origins', {
    tenant_id: tenantId,
    name: `to-${pathPattern.slice(1, -2)}`,
    url,
  });
  const created = await system.create('/api/v1/routes', {
    tenant_id: tenantId,
    path_pattern: pathPattern,
    origin_id: added.id,
    auth_mode: 'public',
    strip_prefix: pathPattern.slice(0, -2),
  });
  return created.position;
}

beforeAll(async () => {
  system = await TestSystem.create();
  origin = await startOrigin('ordinary');
  await system.startControlSide();
  [gateway] = (await system.startGateways(1)) as [GatewayReplica];

  const tenant = await system.admin('POST', '/api/v1/tenants', {
    body: { name: 'Probing Inc', subdomain: SUBDOMAIN },
  });
  expect(tenant.status, tenant.text).toBe(201);
  tenantId = tenant.body['id'] as string;
  await route('/ordinary/*', origin.url);
  await route('/admin-ip/*', `http://127.0.0.1:${gateway.adminPort}`);
  await route('/admin-name/*', `http://localhost:${gateway.adminPort}`);
  const position = await route('/traffic/*', `http://[::ffff:127.0.0.1]:${gateway.port}`);

  await whenServedEverywhere([gateway], tenantId, position, system);
}, 180_000);

afterAll(async () => {
  await system?.close();
  await origin?.close();
  await stopAllServices();
});

describe('origins on the platform’s own listeners', () => {
  it('proxies to an ordinary local origin', async () => {
    const response = await gateway.get(SUBDOMAIN, '/ordinary/hello');
    expect(response.status, response.body).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ origin: 'ordinary', path: '/hello' });
  });

  it.each(['/admin-ip/status', '/admin-name/status', '/traffic/status'])(
    'never answers %s with the gateway’s own listener',
    async (path) => {
      const response = await gateway.get(SUBDOMAIN, path);
      expect(response.body).not.toContain('replica_id');
      expect(response.body).not.toContain(tenantId);
      expect(response.status).toBe(502);
      expect(JSON.parse(response.body)).toMatchObject({ error: { code: 'origin_address_blocked' } });
    },
  );

  it('the control plane refuses its own listener as an origin', async () => {
    const response = await system.admin('POST', '/api/v1/origins', {
      body: { tenant_id: tenantId, name: 'cp', url: `${system.controlPlaneUrl}/api/v1/tenants` },
    });
    expect(response.status, response.text).toBe(400);
    expect(response.body).toMatchObject({
      error: { code: 'origin_address_blocked', details: [{ field: 'url' }] },
    });
  });
});
