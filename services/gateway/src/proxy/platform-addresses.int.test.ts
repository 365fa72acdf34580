import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { originConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it.each([0, 1, 2, 3, 4, 5, 6])(
    'never returns the admin listener’s /status through tenant traffic (spelling %i)',
    async (index) => {
      expectRefused(await send(gateway, 'evil.localhost', `/t${index}/status`));
    },
  );

  it('refuses a loopback origin without sending it anything', async () => {
    const before = local.seen.length;
    expectRefused(await send(gateway, 'evil.localhost', '/t7/hello'));
    expect(local.seen.length).toBe(before);
  });

  it.each([0, 1, 2, 3, 4, 5, 6])(
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
      expectRefused(await sendUpgrade(gateway, 'evil.localhost', '/t7/socket'));
    } finally {
      local.server.off('connection', count);
    }
    expect(connections).toBe(0);
  });
});

describe('the gateway’s own listeners with loopback origins allowed', () => {
  let gateway: TestGateway;
  let local: TestOrigin;

  beforeAll(async () => {
    local = await startTestOrigin('local');
    gateway = await startTestGateway(); // the harness allows loopback origins
    const { adminPort, trafficPort } = gateway.gateway;
    gateway.store.apply(
      tenantWithTargets('evil', [
        `http://127.0.0.1:${adminPort}`,
        `http://localhost:${adminPort}`,
        `http://0.0.0.0:${adminPort}`,
        `http://127.0.0.1:${trafficPort}`,
        local.url,
      ]),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await local?.close();
  });

  it.each([0, 1, 2, 3])(
    'refuses the admin and traffic listeners whatever the setting (target %i)',
    async (i) => {
      expectRefused(await send(gateway, 'evil.localhost', `/t${i}/status`));
    },
  );

  it.each([0, 1, 2, 3])(
    'refuses WebSocket upgrades to the admin and traffic listeners whatever the setting (target %i)',
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

  async function until(what: string, check: () => boolean): Promise<void> {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 25));
    if (!check()) throw new Error(`not reached: ${what}`);
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
