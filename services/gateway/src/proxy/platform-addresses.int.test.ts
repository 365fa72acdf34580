import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, type MockInstance, vi } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot, tenantWithTargets } from '../testing/snapshots.js';
import { sendUpgrade, type UpgradeAnswer } from '../testing/upgrade-request.js';
import { type Resolve, tenantDnsLookups } from '../upstream/dns-lookups.js';
import { createUpstreamSet, type InspectableUpstreamSet } from '../upstream/index.js';

/**
 * Regression tests for requests to the platform itself through tenant traffic: an origin pointing at
 * the gateway's admin listener returned /status (every tenant's id, subdomain and hosts), and
 * loopback, link-local and unspecified addresses were reachable in any spelling, by name (DNS), by
 * active health checks and by the OIDC JWKS fetch. A WebSocket upgrade (`GET /status` with `Upgrade:
 * websocket`) connected without the check and relayed the admin listener's whole answer.
 */

const DEFAULT_RANGES = { ORIGIN_BLOCKED_CIDRS: DEFAULT_ORIGIN_BLOCKED_CIDRS.join(',') };

function expectRefused(response: GatewayResponse | UpgradeAnswer): void {
  expect(response.text).not.toContain('replica_id');
  expect(response.text).not.toContain('vantageedge_');
  expect(response.status).toBe(502);
  expect(JSON.parse(response.text)).toEqual({
    error: { code: 'origin_address_blocked', message: "the origin's address is not allowed" },
  });
}

/** Waits for a state the replica reaches in its own time (a probe's outcome). */
async function until(what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
  if (!check()) throw new Error(`not reached: ${what}`);
}

describe('origins on the platform’s own addresses (default ORIGIN_BLOCKED_CIDRS)', () => {
  let gateway: TestGateway;
  let local: TestOrigin;
  const spellings = (port: number) => [
    `http://127.0.0.1:${port}`,
    `http://2130706433:${port}`,
    `http://0x7f.1:${port}`,
    `http://[::ffff:127.0.0.1]:${port}`,
    `http://0:${port}`,
    `http://[::1]:${port}`,
    // A name is judged by the address it resolves to, when the gateway connects.
    `http://localhost:${port}`,
    // IPv4-compatible: reaches a listener on :: wherever Linux's sit0 tunnel device is up.
    `http://[::127.0.0.1]:${port}`,
  ];

  beforeAll(async () => {
    local = await startTestOrigin('local');
    gateway = await startTestGateway(DEFAULT_RANGES);
    const adminPort = gateway.gateway.adminPort;
    gateway.store.apply(tenantWithTargets('evil', [...spellings(adminPort), local.url]));
  });

  afterAll(async () => {
    await gateway?.close();
    await local?.close();
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7])(
    'never returns the admin listener’s /status through tenant traffic (spelling %i)',
    async (index) => {
      expectRefused(await send(gateway, 'evil.localhost', `/t${index}/status`));
    },
  );

  it('refuses a loopback origin without sending it anything', async () => {
    const before = local.seen.length;
    expectRefused(await send(gateway, 'evil.localhost', '/t8/hello'));
    expect(local.seen.length).toBe(before);
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7])(
    'never connects a WebSocket upgrade to the admin listener: /status and /metrics (spelling %i)',
    async (index) => {
      expectRefused(await sendUpgrade(gateway, 'evil.localhost', `/t${index}/status`));
      expectRefused(await sendUpgrade(gateway, 'evil.localhost', `/t${index}/metrics`));
    },
  );

  it('refuses an upgrade to a loopback origin without connecting to it', async () => {
    let connections = 0;
    const count = () => connections++;
    local.server.on('connection', count);
    try {
      expectRefused(await sendUpgrade(gateway, 'evil.localhost', '/t8/socket'));
    } finally {
      local.server.off('connection', count);
    }
    expect(connections).toBe(0);
  });
});

describe('the gateway’s own listeners with loopback origins allowed', () => {
  let gateway: TestGateway;
  let local: TestOrigin;
  let certificateDir: string;

  beforeAll(async () => {
    local = await startTestOrigin('local');
    const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
    certificateDir = await mkdtemp(path.join(tmpdir(), 'gateway-platform-addresses-'));
    await writeFile(path.join(certificateDir, 'cert.pem'), certificate.chainPem);
    await writeFile(path.join(certificateDir, 'key.pem'), certificate.privateKeyPem);
    // The harness allows loopback origins.
    gateway = await startTestGateway({
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT_FILE: path.join(certificateDir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(certificateDir, 'key.pem'),
    });
    const { adminPort, trafficPort, tlsPort } = gateway.gateway;
    gateway.store.apply(
      tenantWithTargets('evil', [
        `http://127.0.0.1:${adminPort}`,
        `http://localhost:${adminPort}`,
        `http://0.0.0.0:${adminPort}`,
        `http://127.0.0.1:${trafficPort}`,
        local.url,
        `https://127.0.0.1:${tlsPort}`,
        `https://localhost:${tlsPort}`,
      ]),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await local?.close();
    if (certificateDir) await rm(certificateDir, { recursive: true, force: true });
  });

  it.each([0, 1, 2, 3, 5, 6])(
    'refuses the admin, traffic and TLS listeners whatever the setting (target %i)',
    async (i) => {
      expectRefused(await send(gateway, 'evil.localhost', `/t${i}/status`));
    },
  );

  it.each([0, 1, 2, 3, 5, 6])(
    'refuses WebSocket upgrades to the admin, traffic and TLS listeners whatever the setting (target %i)',
    async (i) => {
      expectRefused(await sendUpgrade(gateway, 'evil.localhost', `/t${i}/status`));
    },
  );

  it('still proxies to an ordinary local origin', async () => {
    const response = await send(gateway, 'evil.localhost', '/t4/hello');
    expect(response.status).toBe(200);
    expect(response.json()['origin']).toBe('local');
  });
});

describe('active health checks', () => {
  let probed: Server;
  let probes = 0;
  const sets: InspectableUpstreamSet[] = [];

  beforeAll(async () => {
    probed = createServer((_req, res) => {
      probes++;
      res.end('ok');
    });
    await new Promise<void>((resolve) => probed.listen(0, '127.0.0.1', resolve));
  });

  afterAll(async () => {
    await Promise.all(sets.map((set) => set.close()));
    await new Promise((resolve) => probed.close(resolve));
  });

  function checkedOrigin(url: string) {
    return originConfig.parse({
      id: randomUUID(),
      name: 'probed',
      targets: [{ url }],
      health_check: {
        active: { enabled: true, interval_seconds: 0.1, unhealthy_threshold: 1, healthy_threshold: 1 },
      },
    });
  }

  it('never probes a blocked address, even one reached by name', async () => {
    const port = (probed.address() as AddressInfo).port;
    const set = createUpstreamSet(checkedOrigin(`http://localhost:${port}`), {
      tenantId: randomUUID(),
      addressPolicy: new OriginAddressPolicy(DEFAULT_ORIGIN_BLOCKED_CIDRS),
    });
    sets.push(set);
    await until('the target is marked unhealthy', () => set.status()[0]?.healthy === false);
    expect(probes).toBe(0);
  });
});

describe('the OIDC JWKS fetch', () => {
  let jwksServer: Server;
  let jwksFetches = 0;
  let gateway: TestGateway;
  let origin: TestOrigin;
  let token: string;

  beforeAll(async () => {
    const keys = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'idp-1', alg: 'RS256', use: 'sig' };
    jwksServer = createServer((_req, res) => {
      jwksFetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway(DEFAULT_RANGES);
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'oidc',
        origins: [
          { id: randomUUID(), targets: ['https://api.example.com'] },
          { id: originId, targets: [origin.url] },
        ],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: {
          oidc: {
            issuer: 'https://idp.example.test',
            audience: 'api',
            jwks_url: `http://localhost:${(jwksServer.address() as AddressInfo).port}/jwks`,
          },
        },
      }),
    );
    token = await new SignJWT({ scope: 'read' })
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
      .setIssuer('https://idp.example.test')
      .setAudience('api')
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(keys.privateKey);
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await new Promise((resolve) => jwksServer?.close(resolve));
  });

  it('does not fetch a JWKS from a blocked address', async () => {
    const response = await send(gateway, 'oidc.localhost', '/user/me', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(401);
    expect(jwksFetches).toBe(0);
    expect(origin.seen).toHaveLength(0);
  });
});

describe('redirects from an origin (loopback origins allowed, as in the harness)', () => {
  // A server the redirects point at: reachable under the harness's ranges, so following one would show.
  let pointedAt: Server;
  let pointedAtRequests = 0;
  let redirector: Server;
  let redirectorRequests = 0;
  let onRedirectorRequest = (): void => {};
  let gateway: TestGateway;
  let set: InspectableUpstreamSet | undefined;
  let location: string;

  beforeAll(async () => {
    pointedAt = createServer((_req, res) => {
      pointedAtRequests++;
      res.end('followed');
    });
    await new Promise<void>((resolve) => pointedAt.listen(0, '127.0.0.1', resolve));
    location = `http://127.0.0.1:${(pointedAt.address() as AddressInfo).port}/latest/meta-data/`;
    redirector = createServer((req, res) => {
      redirectorRequests++;
      onRedirectorRequest();
      req.resume();
      res.writeHead(302, { location }).end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway();
    gateway.store.apply(
      tenantWithTargets('redirects', [`http://127.0.0.1:${(redirector.address() as AddressInfo).port}`]),
    );
  });

  afterAll(async () => {
    await set?.close();
    await gateway?.close();
    for (const server of [redirector, pointedAt]) {
      await new Promise<void>((resolve) => {
        server?.close(() => resolve());
        server?.closeAllConnections();
      });
    }
  });

  it('relays an origin’s redirect to the client without following it', async () => {
    const response = await send(gateway, 'redirects.localhost', '/t0/anything');
    expect(response.status).toBe(302);
    expect(response.headers['location']).toBe(location);
    expect(response.text).not.toContain('followed');
    expect(pointedAtRequests).toBe(0);
  });

  it('never follows a health check’s redirect', async () => {
    // A target is probed once at a time: its second probe starts after the first one ended.
    const secondProbe = new Promise<void>((resolve) => {
      const wanted = redirectorRequests + 2;
      onRedirectorRequest = () => {
        if (redirectorRequests >= wanted) resolve();
      };
    });
    set = createUpstreamSet(
      originConfig.parse({
        id: randomUUID(),
        name: 'redirecting',
        targets: [{ url: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}` }],
        health_check: { active: { enabled: true, interval_seconds: 0.1, healthy_threshold: 1 } },
      }),
      {
        tenantId: randomUUID(),
        addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
      },
    );
    await secondProbe;
    expect(pointedAtRequests).toBe(0);
  });
});

describe('the OIDC JWKS fetch on the gateway’s own admin listener (loopback origins allowed)', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let adminRequests = 0;
  let token: string;

  beforeAll(async () => {
    origin = await startTestOrigin('origin');
    gateway = await startTestGateway(); // the harness allows loopback origins
    gateway.gateway.adminServer.on('request', () => adminRequests++);
    const keys = await generateKeyPair('RS256');
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'own-jwks',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: {
          oidc: {
            issuer: 'https://idp.example.test',
            audience: 'api',
            jwks_url: `http://127.0.0.1:${gateway.gateway.adminPort}/status`,
          },
        },
      }),
    );
    token = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: 'idp-1' })
      .setIssuer('https://idp.example.test')
      .setAudience('api')
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(keys.privateKey);
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('never connects to it: the token is refused and the admin listener sees no request', async () => {
    // The request waits for the key set's fetch: had it connected, the admin listener had counted it.
    const response = await send(gateway, 'own-jwks.localhost', '/user/me', {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(401);
    expect(adminRequests).toBe(0);
    expect(origin.seen).toHaveLength(0);
  });
});

describe('a name that resolves to a blocked address after it was served (DNS rebinding)', () => {
  // One port on two loopback addresses: 127.0.0.1 is an allowed origin, 127.0.0.2 stands for a blocked
  // address (the gateway's ranges name it), reachable if the gateway connected to it.
  let allowed: Server;
  let blocked: Server;
  let blockedConnections = 0;
  let allowedProbes = 0;
  let gateway: TestGateway;
  let lookups: MockInstance<typeof tenantDnsLookups.forTenant>;
  let scopedLookups: MockInstance<typeof tenantDnsLookups.scoped>;
  let answer = '127.0.0.1';
  const ranges = [...ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK, '127.0.0.2/32'];
  // The key sets both addresses publish at /jwks: the blocked one lists a key of its own as well.
  const signers = new Map<string, CryptoKey>();
  const publicKeys = new Map<string, JWK>();
  const sign = (kid: string) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuer('https://idp.example.test')
      .setAudience('api')
      .setSubject('user-1')
      .setExpirationTime('5m')
      .sign(signers.get(kid)!);

  beforeAll(async () => {
    for (const kid of ['listed', 'internal']) {
      const keys = await generateKeyPair('RS256');
      signers.set(kid, keys.privateKey);
      publicKeys.set(kid, { ...(await exportJWK(keys.publicKey)), kid, alg: 'RS256', use: 'sig' });
    }
    // Each answer closes its connection, so every request connects (and looks the name up) again.
    const answering = (req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      const at = req.socket.localAddress;
      if (at === '127.0.0.1' && req.headers['user-agent'] === 'vantageedge-health-check') allowedProbes++;
      if (req.url === '/jwks') {
        const kids = at === '127.0.0.2' ? ['listed', 'internal'] : ['listed'];
        res.writeHead(200, { connection: 'close', 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys: kids.map((kid) => publicKeys.get(kid)) }));
        return;
      }
      res.writeHead(200, { connection: 'close' }).end(`served by ${at}`);
    };
    allowed = createServer(answering);
    await new Promise<void>((resolve) => allowed.listen(0, '127.0.0.1', resolve));
    const port = (allowed.address() as AddressInfo).port;
    blocked = createServer(answering);
    blocked.on('connection', () => blockedConnections++);
    await new Promise<void>((resolve) => blocked.listen(port, '127.0.0.2', resolve));
    // The gateway's DNS lookups (TenantDnsLookups: the upstream sets' scoped ones, the WebSocket
    // upgrades' and the JWKS fetches') answer for rebind.example.test what the test says.
    const rebinding =
      (resolve: Resolve): Resolve =>
      (hostname, options, callback) => {
        if (hostname !== 'rebind.example.test') return resolve(hostname, options, callback);
        queueMicrotask(() => callback(null, [{ address: answer, family: 4 }]));
      };
    const forTenant = tenantDnsLookups.forTenant.bind(tenantDnsLookups);
    lookups = vi
      .spyOn(tenantDnsLookups, 'forTenant')
      .mockImplementation((tenant) => rebinding(forTenant(tenant)));
    const scoped = tenantDnsLookups.scoped.bind(tenantDnsLookups);
    scopedLookups = vi.spyOn(tenantDnsLookups, 'scoped').mockImplementation((tenant) => {
      const turn = scoped(tenant);
      return { ...turn, resolve: rebinding(turn.resolve) };
    });
    // No cooldown: a token naming a kid the set does not list has the set fetched again at once.
    gateway = await startTestGateway(
      { ORIGIN_BLOCKED_CIDRS: ranges.join(',') },
      { jwksPolicy: { cooldownMs: 0 } },
    );
    gateway.store.apply(tenantWithTargets('rebinding', [`http://rebind.example.test:${port}`]));
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'rebinding-jwks',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${port}`] }],
        routes: [{ origin_id: originId, path_pattern: '/user/*', auth_mode: 'jwt_required' }],
        settings: {
          oidc: {
            issuer: 'https://idp.example.test',
            audience: 'api',
            jwks_url: `http://rebind.example.test:${port}/jwks`,
          },
        },
      }),
    );
  });

  afterAll(async () => {
    lookups?.mockRestore();
    scopedLookups?.mockRestore();
    await gateway?.close();
    for (const server of [allowed, blocked]) {
      await new Promise<void>((resolve) => {
        server?.close(() => resolve());
        server?.closeAllConnections();
      });
    }
  });

  it('serves while the name resolves to an allowed address, and refuses once it resolves to a blocked one', async () => {
    answer = '127.0.0.1';
    const served = await send(gateway, 'rebinding.localhost', '/t0/hello');
    expect(served.status).toBe(200);
    expect(served.text).toBe('served by 127.0.0.1');

    answer = '127.0.0.2';
    expectRefused(await send(gateway, 'rebinding.localhost', '/t0/hello'));
    expectRefused(await sendUpgrade(gateway, 'rebinding.localhost', '/t0/socket'));
    expect(blockedConnections).toBe(0);
  });

  it('fetches a jwks_url from the allowed address only: a key listed at the blocked one never verifies a token', async () => {
    answer = '127.0.0.1';
    const verified = await send(gateway, 'rebinding-jwks.localhost', '/user/me', {
      headers: { authorization: `Bearer ${await sign('listed')}` },
    });
    expect(verified.status).toBe(200);

    answer = '127.0.0.2';
    // A kid the set does not list has it fetched again, now from where the name resolves.
    const refused = await send(gateway, 'rebinding-jwks.localhost', '/user/me', {
      headers: { authorization: `Bearer ${await sign('internal')}` },
    });
    expect(refused.status).toBe(401);
    expect(blockedConnections).toBe(0);
  });

  it('ejects a target whose name comes to resolve to a blocked address, without probing it (active health checks)', async () => {
    answer = '127.0.0.1';
    const port = (allowed.address() as AddressInfo).port;
    const set = createUpstreamSet(
      originConfig.parse({
        id: randomUUID(),
        name: 'rebinding-probes',
        targets: [{ url: `http://rebind.example.test:${port}` }],
        health_check: {
          active: { enabled: true, interval_seconds: 0.1, unhealthy_threshold: 1, healthy_threshold: 1 },
        },
      }),
      { tenantId: randomUUID(), addressPolicy: new OriginAddressPolicy(ranges) },
    );
    try {
      await until('a probe reached the allowed address', () => allowedProbes > 0);
      expect(set.status()[0]?.healthy).toBe(true);

      answer = '127.0.0.2';
      await until('the target is marked unhealthy', () => set.status()[0]?.healthy === false);
      expect(blockedConnections).toBe(0);
    } finally {
      await set.close();
    }
  });
});
