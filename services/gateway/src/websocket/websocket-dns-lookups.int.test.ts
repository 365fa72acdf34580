import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { tenantDnsLookups } from '../upstream/dns-lookups.js';

/**
 * Regression test: a WebSocket upgrade connected to its origin with a connector of its own that looked
 * names up at once, not in its tenant's turn (TenantDnsLookups), so a tenant's upgrades to names whose
 * name servers never answer could hold every libuv thread the other tenants' lookups need.
 */
describe('WebSocket upgrades look origin names up in their tenant’s turn', () => {
  let origin: Server;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  /** Every name looked up through a tenant's turn, as `<tenant> <name>`. */
  const lookedUp: string[] = [];

  beforeAll(async () => {
    origin = createServer((_req, res) => res.end('plain'));
    origin.on('upgrade', (_req, socket: Socket) => {
      socket.end(
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n',
      );
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const forTenant = tenantDnsLookups.forTenant.bind(tenantDnsLookups);
    vi.spyOn(tenantDnsLookups, 'forTenant').mockImplementation((tenant) => {
      const resolve = forTenant(tenant);
      return (hostname, options, callback) => {
        lookedUp.push(`${tenant} ${hostname}`);
        // Names under .servfail.test: their name servers fail (getaddrinfo's EAI_AGAIN).
        if (hostname.endsWith('.servfail.test')) {
          const error = Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), { code: 'EAI_AGAIN' });
          setImmediate(() => callback(error, []));
          return;
        }
        resolve(hostname, { ...options, family: 4 }, callback);
      };
    });
    gateway = await startTestGateway();
    const originId = randomUUID();
    const unresolvableId = randomUUID();
    const port = (origin.address() as AddressInfo).port;
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'dnsws',
        origins: [
          { id: originId, targets: [`http://localhost:${port}`] },
          { id: unresolvableId, targets: [`http://origin.servfail.test:${port}`] },
        ],
        routes: [
          { origin_id: originId, path_pattern: '/ws/*' },
          { origin_id: unresolvableId, path_pattern: '/unresolvable/*' },
        ],
      }),
    );
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await gateway?.close();
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it('switches an upgrade whose origin is a name, looked up as its tenant’s', async () => {
    const answer = await sendUpgrade(gateway, 'dnsws.localhost', '/ws/chat');
    expect(answer.status).toBe(101);
    expect(lookedUp).toContain(`${tenantId} localhost`);
  });

  it('answers an upgrade whose origin name does not resolve as a request is answered: 502 upstream_unreachable', async () => {
    const answer = await sendUpgrade(gateway, 'dnsws.localhost', '/unresolvable/chat');
    expect(answer.status).toBe(502);
    expect(JSON.parse(answer.text).error).toMatchObject({
      code: 'upstream_unreachable',
      message: "the origin's host name did not resolve",
    });
  });
});
