import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Base domains nested under another (`localhost` and `eu.localhost`, or `apps.eu.localhost`):
 * `eu.localhost` is the parent of every tenant host under the nested one, so a tenant whose subdomain
 * is `eu` would answer there and its origin's `Strict-Transport-Security: …; includeSubDomains` would
 * hold for every other tenant's host under it.
 */
describe.each(['eu.localhost', 'apps.eu.localhost'])(
  'a base domain under another base domain (%s beside localhost)',
  (nestedBase) => {
    let origin: Server;
    let gateway: TestGateway;

    beforeAll(async () => {
      origin = createServer((_req, res) => {
        res.setHeader('strict-transport-security', 'max-age=31536000; includeSubDomains');
        res.end('ok');
      });
      await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
      gateway = await startTestGateway({ PLATFORM_BASE_DOMAINS: `localhost,${nestedBase}` });
      const target = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
      for (const subdomain of ['eu', 'acme']) {
        const originId = randomUUID();
        gateway.store.apply(
          buildSnapshot({
            subdomain,
            origins: [{ id: originId, targets: [target] }],
            routes: [{ origin_id: originId, path_pattern: '/*' }],
          }),
        );
      }
    });

    afterAll(async () => {
      await gateway?.close();
      await new Promise((resolve) => origin?.close(resolve));
    });

    it('serves no tenant on the parent of the nested base domain, so no origin speaks for the hosts under it', async () => {
      const response = await send(gateway, 'eu.localhost', '/');
      expect(response.status).toBe(404);
      expect(response.json()).toMatchObject({ error: { code: 'tenant_not_found' } });
      expect(response.headers['strict-transport-security']).toBeUndefined();
    });

    it('still serves the tenants under either base domain', async () => {
      expect((await send(gateway, `acme.${nestedBase}`, '/')).status).toBe(200);
      expect((await send(gateway, 'acme.localhost', '/')).status).toBe(200);
      expect((await send(gateway, `eu.${nestedBase}`, '/')).status).toBe(200);
    });
  },
);
