import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { cachePolicy, originConfig } from '@vantageedge/shared/domain/gateway-config';
import { INTERNAL_LISTENER_HEADER, internalListenerHeader } from '@vantageedge/shared/http/internal-listener';
import {
  DEFAULT_ORIGIN_BLOCKED_CIDRS,
  ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK,
  OriginAddressPolicy,
} from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  type TestGateway,
} from '../testing/gateway-harness.js';
import { buildSnapshot, tenantWithTargets } from '../testing/snapshots.js';
import { sendUpgrade, type UpgradeAnswer } from '../testing/upgrade-request.js';
import { createUpstreamSet, type InspectableUpstreamSet } from '../upstream/index.js';

/**
 * Regression tests: a tenant read ANOTHER replica's admin listener through the traffic port. Its
 * origin named a peer's admin port (docker-compose binds every replica's on 0.0.0.0, without a token,
 * and private ranges are allowed origins); the address policy only knows the replica's own listeners,
 * so `GET evil.<base>/status` answered the peer's replica id and every tenant it serves, `/metrics`
 * too, and the same way the projectors' metrics servers and the control plane's /metrics and /readyz.
 * Every internal listener now marks its answers (x-vantageedge-internal) and the gateway never relays
 * a marked answer: 502 origin_address_blocked, as for an address the policy refuses.
 */

function expectRefused(response: GatewayResponse | UpgradeAnswer): void {
  expect(response.text).not.toContain('replica_id');
  expect(response.text).not.toContain('vantageedge_');
  expect(response.text).not.toContain('victim-secret-corp');
  expect(response.headers[INTERNAL_LISTENER_HEADER]).toBeUndefined();
  expect(response.status).toBe(502);
  expect(JSON.parse(response.text)).toEqual({
    error: { code: 'origin_address_blocked', message: "the origin's address is not allowed" },
  });
}

/** A listener marked as a platform service's, answering what such a service would (metrics text). */
async function startMarkedListener(service: string): Promise<Server> {
  const server = createServer((req, res) => {
    req.resume();
    res.setHeader(...internalListenerHeader(service));
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('vantageedge_internal_metric 1\n');
  });
  server.on('upgrade', (_req, socket) => {
    socket.end(
      `HTTP/1.1 200 OK\r\n${internalListenerHeader(service).join(': ')}\r\ncontent-length: 30\r\n\r\nvantageedge_internal_metric 1\n`,
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** A non-loopback IPv4 address of this machine (how a peer container is reached), if there is one. */
function externalAddress(): string | undefined {
  for (const entries of Object.values(networkInterfaces())) {
    for (const entry of entries ?? []) if (entry.family === 'IPv4' && !entry.internal) return entry.address;
  }
  return undefined;
}

const gateways: TestGateway[] = [];
let peer: TestGateway;
/** A tenant the peer serves: its /status would name it. */
const victim = buildSnapshot({
  subdomain: 'victim-secret-corp',
  origins: [{ id: '00000000-0000-4000-8000-00000000000a', targets: ['http://192.0.2.1:9/'] }],
  routes: [{ origin_id: '00000000-0000-4000-8000-00000000000a', path_pattern: '/*' }],
});

beforeAll(async () => {
  // Replica B as docker-compose runs it: admin listener on every interface (with its /status token).
  peer = await startTestGateway({
    GATEWAY_ADMIN_HOST: '0.0.0.0',
    GATEWAY_ADMIN_TOKEN: 'peer-admin-token-0001',
  });
  gateways.push(peer);
  peer.store.apply(victim);
});

afterAll(async () => {
  for (const gateway of gateways) await gateway.close();
});

const external = externalAddress();

/*
 * Each case has a target of its own: a refused answer counts as a connect error against the target,
 * and passive health checks eject a target after a few (the next request would be 503, not 502).
 */

describe.skipIf(external === undefined)(
  'a peer replica’s admin listener by a private address (default ORIGIN_BLOCKED_CIDRS)',
  () => {
    const paths = ['/status', '/metrics', '/readyz', '/healthz', '/no-such-endpoint'];
    const upgrades = ['/status', '/metrics'];
    let gateway: TestGateway;

    beforeAll(async () => {
      gateway = await startTestGateway({ ORIGIN_BLOCKED_CIDRS: DEFAULT_ORIGIN_BLOCKED_CIDRS.join(',') });
      gateways.push(gateway);
      gateway.store.apply(victim);
      const target = `http://${external}:${peer.gateway.adminPort}`;
      gateway.store.apply(
        tenantWithTargets(
          'evil',
          [...paths, ...upgrades].map(() => target),
        ),
      );
    });

    it.each(paths.map((path, index) => [path, index] as const))(
      'answers %s 502 origin_address_blocked',
      async (path, index) => {
        expectRefused(await send(gateway, 'evil.localhost', `/t${index}${path}`));
      },
    );

    it.each(upgrades.map((path, index) => [path, paths.length + index] as const))(
      'answers a WebSocket upgrade to %s 502 origin_address_blocked',
      async (path, index) => {
        expectRefused(await sendUpgrade(gateway, 'evil.localhost', `/t${index}${path}`));
      },
    );
  },
);

describe('internal listeners on loopback (loopback origins allowed, as in the harness)', () => {
  type Listener = 'peer admin' | 'peer admin by name' | 'projector' | 'control plane';
  const cases: Array<{ listener: Listener; path: string; upgrade?: boolean; method?: string }> = [
    { listener: 'peer admin', path: '/status' },
    { listener: 'peer admin', path: '/metrics' },
    { listener: 'peer admin by name', path: '/status' },
    { listener: 'projector', path: '/metrics' },
    { listener: 'projector', path: '/healthz' },
    { listener: 'projector', path: '/nothing-here' },
    { listener: 'projector', path: '/metrics', method: 'POST' },
    { listener: 'control plane', path: '/metrics' },
    { listener: 'control plane', path: '/readyz' },
    { listener: 'control plane', path: '/healthz' },
    { listener: 'control plane', path: '/openapi.json' },
    { listener: 'control plane', path: '/nothing-here' },
    { listener: 'control plane', path: '/api/v1/tenants' },
    { listener: 'control plane', path: '/metrics', method: 'POST' },
    { listener: 'peer admin', path: '/status', upgrade: true },
    { listener: 'peer admin', path: '/metrics', upgrade: true },
    { listener: 'projector', path: '/metrics', upgrade: true },
    { listener: 'control plane', path: '/metrics', upgrade: true },
  ];
  let gateway: TestGateway;
  // The projector's metrics server and the control plane mark their answers as the gateway's admin
  // listener does (each service's own tests check that it does); here, listeners marked as they are.
  let projector: Server;
  let controlPlane: Server;

  beforeAll(async () => {
    projector = await startMarkedListener('projector');
    controlPlane = await startMarkedListener('control-plane');
    const targets: Record<Listener, string> = {
      'peer admin': `http://127.0.0.1:${peer.gateway.adminPort}`,
      'peer admin by name': `http://localhost:${peer.gateway.adminPort}`,
      projector: `http://127.0.0.1:${(projector.address() as AddressInfo).port}`,
      'control plane': `http://127.0.0.1:${(controlPlane.address() as AddressInfo).port}`,
    };
    gateway = await startTestGateway(); // the harness allows loopback origins
    gateways.push(gateway);
    gateway.store.apply(
      tenantWithTargets(
        'evil',
        cases.map((c) => targets[c.listener]),
      ),
    );
  });

  afterAll(async () => {
    for (const server of [projector, controlPlane]) {
      await new Promise<void>((resolve) => {
        server?.close(() => resolve());
        server?.closeAllConnections();
      });
    }
  });

  it.each(
    cases.map(
      (c, index) => [c.listener, c.upgrade ? 'upgrade' : (c.method ?? 'GET'), c.path, index] as const,
    ),
  )('%s: %s %s answers 502 origin_address_blocked', async (_listener, kind, path, index) => {
    const response =
      kind === 'upgrade'
        ? await sendUpgrade(gateway, 'evil.localhost', `/t${index}${path}`)
        : await send(gateway, 'evil.localhost', `/t${index}${path}`, {
            method: kind,
            ...(kind === 'POST' ? { body: '{}', headers: { 'content-type': 'application/json' } } : {}),
          });
    expectRefused(response);
  });
});

describe('the response cache', () => {
  let gateway: TestGateway;
  let cache: ResponseCache;
  let origin: Server;
  let originUrl = '';
  let skewMs = 0;
  const tenantId = randomUUID();
  const originId = randomUUID();
  const routeId = randomUUID();

  function snapshot(version: number, target: string, policy: Record<string, unknown>) {
    const built = buildSnapshot({
      tenantId,
      version,
      subdomain: 'cached-evil',
      origins: [{ id: originId, targets: [target] }],
      routes: [{ id: routeId, origin_id: originId, path_pattern: '/*' }],
    });
    built.routes[0]!.cache_policy = cachePolicy.parse(policy);
    return built;
  }

  beforeAll(async () => {
    origin = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=1' });
      res.end('{"from":"origin"}');
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    const registry = createMetricsRegistry('internal-listener-cache', { defaultMetrics: false });
    cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 10_000_000, now: () => Date.now() + skewMs }),
      l1MaxBytes: 1_000_000,
      registry,
      logger: createLogger({ service: 'test', level: 'error' }),
      now: () => Date.now() + skewMs,
    });
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
    gateways.push(gateway);
    await cache.prepareTenant(tenantId);
  });

  afterAll(async () => {
    await cache?.close();
    await new Promise<void>((resolve) => {
      origin?.close(() => resolve());
      origin?.closeAllConnections();
    });
  });

  it('never stores an internal listener’s answer on a miss', async () => {
    gateway.store.apply(snapshot(1, `http://127.0.0.1:${peer.gateway.adminPort}`, { ttl_seconds: 60 }));
    expectRefused(await send(gateway, 'cached-evil.localhost', '/status'));
    const again = await send(gateway, 'cached-evil.localhost', '/status');
    expectRefused(again);
    expect(again.headers['x-cache']).not.toBe('HIT');
  });

  it('never stores an internal listener’s answer from a stale-while-revalidate refresh', async () => {
    const policy = { ttl_seconds: 1, stale_while_revalidate_seconds: 60 };
    gateway.store.apply(snapshot(2, originUrl, policy));
    const first = await send(gateway, 'cached-evil.localhost', '/metrics');
    expect(first.text).toBe('{"from":"origin"}');
    // The tenant now points the route's origin at the peer's admin listener.
    gateway.store.apply(snapshot(3, `http://127.0.0.1:${peer.gateway.adminPort}`, policy));
    skewMs = 2_000;
    try {
      const stale = await send(gateway, 'cached-evil.localhost', '/metrics');
      expect(stale.headers['x-cache']).toBe('STALE');
      expect(stale.text).toBe('{"from":"origin"}');
      await new Promise((resolve) => setTimeout(resolve, 500));
      const after = await send(gateway, 'cached-evil.localhost', '/metrics');
      expect(after.text).not.toContain('vantageedge_');
      expect(after.headers[INTERNAL_LISTENER_HEADER]).toBeUndefined();
    } finally {
      skewMs = 0;
    }
  });
});

describe('active health checks', () => {
  const sets: InspectableUpstreamSet[] = [];

  afterAll(async () => {
    await Promise.all(sets.map((set) => set.close()));
  });

  it('count an internal listener’s answer as a failed probe', async () => {
    const set = createUpstreamSet(
      originConfig.parse({
        id: randomUUID(),
        name: 'probed',
        targets: [{ url: `http://127.0.0.1:${peer.gateway.adminPort}` }],
        health_check_path: '/healthz',
        health_check: {
          active: { enabled: true, interval_seconds: 0.1, unhealthy_threshold: 1, healthy_threshold: 1 },
        },
      }),
      {
        tenantId: randomUUID(),
        addressPolicy: new OriginAddressPolicy(ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK),
      },
    );
    sets.push(set);
    for (let i = 0; i < 200 && set.status()[0]?.healthy !== false; i++)
      await new Promise((resolve) => setTimeout(resolve, 25));
    expect(set.status()[0]?.healthy).toBe(false);
  });
});
