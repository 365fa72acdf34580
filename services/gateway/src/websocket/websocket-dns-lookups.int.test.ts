import { randomUUID } from 'node:crypto';
import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';
import { type Resolve, tenantDnsLookups } from '../upstream/dns-lookups.js';

type LookupCallback = (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void;

/** Lookups of names under .stalled.test, as a name server that never answers leaves them: hanging. */
const stalled: Array<{ name: string; answer: LookupCallback }> = [];
vi.mock('node:dns', async (importOriginal) => {
  const dns = await importOriginal<typeof import('node:dns')>();
  const lookup = (hostname: string, options: object, callback: LookupCallback) => {
    if (hostname.endsWith('.stalled.test')) stalled.push({ name: hostname, answer: callback });
    else dns.lookup(hostname, options, callback as never);
  };
  return { ...dns, default: { ...dns, lookup }, lookup };
});

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
    const watched =
      (tenant: string, resolve: Resolve): Resolve =>
      (hostname, options, callback) => {
        lookedUp.push(`${tenant} ${hostname}`);
        // Names under .servfail.test: their name servers fail (getaddrinfo's EAI_AGAIN).
        if (hostname.endsWith('.servfail.test')) {
          const error = Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), { code: 'EAI_AGAIN' });
          setImmediate(() => callback(error, []));
          return;
        }
        resolve(hostname, { ...options, family: 4 }, callback);
      };
    const forTenant = tenantDnsLookups.forTenant.bind(tenantDnsLookups);
    vi.spyOn(tenantDnsLookups, 'forTenant').mockImplementation((tenant) =>
      watched(tenant, forTenant(tenant)),
    );
    const scoped = tenantDnsLookups.scoped.bind(tenantDnsLookups);
    vi.spyOn(tenantDnsLookups, 'scoped').mockImplementation((tenant) => {
      const scope = scoped(tenant);
      return { resolve: watched(tenant, scope.resolve), release: scope.release };
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

/**
 * Regression test: an upgrade's lookups were the tenant's but in no upstream set's scope, so those not yet
 * started stayed in the tenant's line after the origin that asked for them was gone (changed, or its
 * tenant deleted), and each held one of libuv's threads for the resolver's whole timeout when its turn
 * came, while the tenant's new names waited behind them.
 */
describe('WebSocket upgrades’ lookups leave the line once their origin is gone', () => {
  let origin: Server;
  let gateway: TestGateway;
  const tenantId = randomUUID();

  beforeAll(async () => {
    origin = createServer((_req, res) => res.end('plain'));
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway();
    const port = (origin.address() as AddressInfo).port;
    const first = randomUUID();
    const second = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'dnswsgone',
        origins: [
          { id: first, targets: [`http://first.stalled.test:${port}`], timeout_seconds: 1 },
          { id: second, targets: [`http://second.stalled.test:${port}`], timeout_seconds: 1 },
        ],
        routes: [
          { origin_id: first, path_pattern: '/first/*' },
          { origin_id: second, path_pattern: '/second/*' },
        ],
      }),
    );
  });

  afterAll(async () => {
    for (let lookup = stalled.shift(); lookup !== undefined; lookup = stalled.shift())
      lookup.answer(Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' }), []);
    await gateway?.close();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it('does not look up a deleted tenant’s name that an upgrade left waiting in its turn', async () => {
    // The first name's lookup hangs and holds the tenant's turn; the second's waits behind it.
    const first = sendUpgrade(gateway, 'dnswsgone.localhost', '/first/chat');
    await vi.waitFor(() => expect(stalled.map((lookup) => lookup.name)).toEqual(['first.stalled.test']));
    const answers = await Promise.all([first, sendUpgrade(gateway, 'dnswsgone.localhost', '/second/chat')]);
    expect(answers.map((answer) => answer.status)).toEqual([504, 504]);

    gateway.store.remove(tenantId);
    // Its upstream sets have closed once their series are gone.
    await vi.waitFor(async () =>
      expect(await gateway.registry.metrics()).not.toMatch(
        new RegExp(`vantageedge_upstream_\\w+\\{[^}]*${tenantId}`),
      ),
    );
    stalled.shift()?.answer(Object.assign(new Error('timeout'), { code: 'EAI_AGAIN' }), []);
    expect(stalled.map((lookup) => lookup.name)).toEqual([]);
  });
});
