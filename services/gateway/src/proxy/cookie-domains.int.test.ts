import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression test for cookies set for every tenant: an origin's `Set-Cookie: …; Domain=<platform base
 * domain>` passed through, so one tenant could set cookies on all tenants' hosts (and the admin
 * host). A Domain that is not the request's host, or a parent of it that is one of the tenant's own
 * hosts, is now removed: the cookie becomes host-only.
 */
describe('Set-Cookie Domain attributes from origins', () => {
  let origin: Server;
  let gateway: TestGateway;
  const cookies = [
    'platform=1; Domain=localhost; Path=/; HttpOnly',
    'platform-dot=1; Path=/; domain=.LOCALHOST',
    'base=1; Domain=vantageedge.dev; Secure',
    'other-tenant=1; Domain=globex.localhost',
    'own-host=1; Domain=acme.localhost; Path=/',
    'own-custom=1; Domain=acme.example',
    'custom-parent=1; Domain=example',
    'no-domain=1; Path=/',
  ];

  beforeAll(async () => {
    origin = createServer((_req, res) => {
      res.setHeader('set-cookie', cookies);
      res.end('ok');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'acme',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
        customDomains: ['acme.example', 'api.acme.example'],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it('makes cookies scoped to the platform or another tenant host-only on the tenant host', async () => {
    const response = await send(gateway, 'acme.localhost', '/login');
    expect(response.status).toBe(200);
    expect(response.headers['set-cookie']).toEqual([
      'platform=1; Path=/; HttpOnly',
      'platform-dot=1; Path=/',
      'base=1; Secure',
      'other-tenant=1',
      'own-host=1; Domain=acme.localhost; Path=/',
      'own-custom=1',
      'custom-parent=1',
      'no-domain=1; Path=/',
    ]);
  });

  it("keeps a Domain that is one of the tenant's own hosts above the request host", async () => {
    const response = await send(gateway, 'api.acme.example', '/login');
    expect(response.headers['set-cookie']).toEqual([
      'platform=1; Path=/; HttpOnly',
      'platform-dot=1; Path=/',
      'base=1; Secure',
      'other-tenant=1',
      'own-host=1; Path=/',
      'own-custom=1; Domain=acme.example',
      'custom-parent=1',
      'no-domain=1; Path=/',
    ]);
  });
});
