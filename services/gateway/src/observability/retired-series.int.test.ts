import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type ClientHttp2Session, connect as connectHttp2, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { EventLoopSlices } from '@vantageedge/shared/process/event-loop-slices';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache } from '../cache/response-cache.js';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/** `/status/<code>` answers with that status; anything else 200. */
async function startStatusOrigin(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const status = /^\/[^/]+\/status\/(\d{3})$/.exec(req.url ?? '')?.[1];
    req.resume();
    res.writeHead(status === undefined ? 200 : Number(status), { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/**
 * Regression: series labelled by a route or tenant stayed in /metrics after the route or tenant left
 * the replica's config, so a tenant admin replacing a route over and over grew every replica's
 * /metrics (and memory) without bound.
 */
describe('series of retired routes and tenants', () => {
  let origin: { server: Server; url: string };
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const originId = randomUUID();
  const keptRouteId = randomUUID();

  beforeAll(async () => {
    origin = await startStatusOrigin();
    const registry = new Registry();
    const logger = createLogger({ service: 'test', level: 'error' });
    const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger });
    const cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
      l1MaxBytes: 1_000_000,
      registry,
      logger,
    });
    gateway = await startTestGateway(
      {},
      { registry, stages: [createRateLimitStage(limiter), createCacheStage(cache)] },
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await new Promise((resolve) => origin?.server.close(resolve));
  });

  const snapshot = (version: number, churnRouteId: string) =>
    buildSnapshot({
      tenantId,
      version,
      subdomain: 'retired-series',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { id: keptRouteId, origin_id: originId, path_pattern: '/keep/*' },
        {
          id: churnRouteId,
          origin_id: originId,
          path_pattern: '/churn/*',
          rate_limit: { requests_per_second: 1000, burst: 100_000 },
          cache_policy: { ttl_seconds: 60 },
        },
      ],
    });

  const tenantLines = async (): Promise<string[]> => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith('vantageedge_gateway_') && l.includes(tenantId));
  };

  it('removes a replaced route’s series, keeps (and keeps counting) those of a route that stays', async () => {
    const ROUNDS = 20;
    let churnRouteId = '';
    for (let version = 1; version <= ROUNDS; version++) {
      churnRouteId = randomUUID();
      gateway.store.apply(snapshot(version, churnRouteId));
      expect((await send(gateway, 'retired-series.localhost', '/keep/x')).status).toBe(200);
      expect((await send(gateway, 'retired-series.localhost', `/churn/${version}`)).status).toBe(200);
      expect((await send(gateway, 'retired-series.localhost', '/churn/status/404')).status).toBe(404);
    }
    const lines = await tenantLines();
    const family = (name: string) => lines.filter((l) => l.startsWith(`${name}{`));

    expect(family('vantageedge_gateway_request_duration_seconds_count').sort()).toEqual(
      [
        `vantageedge_gateway_request_duration_seconds_count{tenant="${tenantId}",route="${keptRouteId}",status_class="2xx"} ${ROUNDS}`,
        `vantageedge_gateway_request_duration_seconds_count{tenant="${tenantId}",route="${churnRouteId}",status_class="2xx"} 1`,
        `vantageedge_gateway_request_duration_seconds_count{tenant="${tenantId}",route="${churnRouteId}",status_class="4xx"} 1`,
      ].sort(),
    );
    expect(family('vantageedge_gateway_upstream_duration_seconds_count')).toHaveLength(2);
    const stale = lines.filter(
      (l) => /route="[0-9a-f-]{36}"/.test(l) && !l.includes(keptRouteId) && !l.includes(churnRouteId),
    );
    expect(stale).toEqual([]);
    expect(family('vantageedge_gateway_ratelimit_decisions_total')).toHaveLength(1);
    const lookups = family('vantageedge_gateway_cache_lookups_total');
    expect(lookups.length).toBeGreaterThan(0);
    expect(lookups.filter((l) => !l.includes(churnRouteId))).toEqual([]);
    // Rebuilt at every scrape from the cache's per-route totals: only the live route's.
    expect(family('vantageedge_gateway_cache_hit_ratio')).toEqual([
      `vantageedge_gateway_cache_hit_ratio{tenant="${tenantId}",route="${churnRouteId}"} 0`,
    ]);
  });

  it('removes the hit ratio of a route whose cache policy was dropped before the route went', async () => {
    // Each round: a new route caches and is looked up, then loses its cache policy, then is deleted
    // (replaced by the next round's route). A replica kept each such route's hit ratio for ever.
    const churner = randomUUID();
    const ROUNDS = 30;
    const routeOf = (routeId: string, cached: boolean) => ({
      id: routeId,
      origin_id: originId,
      path_pattern: '/churn/*',
      ...(cached ? { cache_policy: { ttl_seconds: 60 } } : {}),
    });
    const apply = (version: number, route: ReturnType<typeof routeOf>) =>
      gateway.store.apply(
        buildSnapshot({
          tenantId: churner,
          version,
          subdomain: 'cache-dropped',
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [route],
        }),
      );
    const hitRatios = async (): Promise<string[]> => {
      const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
      return text
        .split('\n')
        .filter((l) => l.startsWith('vantageedge_gateway_cache_hit_ratio{') && l.includes(churner));
    };
    let version = 0;
    let routeId = '';
    for (let round = 0; round < ROUNDS; round++) {
      routeId = randomUUID();
      apply(++version, routeOf(routeId, true));
      expect((await send(gateway, 'cache-dropped.localhost', `/churn/${round}`)).status).toBe(200);
      apply(++version, routeOf(routeId, false));
    }
    apply(++version, routeOf(randomUUID(), false));
    expect(await hitRatios()).toEqual([]);
    // A route that caches again gets its series back from its next lookup.
    routeId = randomUUID();
    apply(++version, routeOf(routeId, true));
    expect((await send(gateway, 'cache-dropped.localhost', '/churn/again')).status).toBe(200);
    expect(await hitRatios()).toEqual([
      `vantageedge_gateway_cache_hit_ratio{tenant="${churner}",route="${routeId}"} 0`,
    ]);
    gateway.store.remove(churner);
  });

  it('bounds the status label of errors an origin answers', async () => {
    for (const status of [404, 460, 461, 599]) {
      expect((await send(gateway, 'retired-series.localhost', `/keep/status/${status}`)).status).toBe(status);
    }
    const errors = (await tenantLines()).filter((l) =>
      l.startsWith('vantageedge_gateway_error_responses_total{'),
    );
    expect(errors.some((l) => l.includes('status="404",code="origin"'))).toBe(true);
    expect(errors.some((l) => l.includes('status="4xx",code="origin"} 2'))).toBe(true);
    expect(errors.some((l) => l.includes('status="5xx",code="origin"} 1'))).toBe(true);
    expect(errors.filter((l) => /status="(460|461|599)"/.test(l))).toEqual([]);
  });

  it('removes every series of a removed tenant', async () => {
    expect((await send(gateway, 'retired-series.localhost', '/nothing-here')).status).toBe(404);
    expect((await tenantLines()).length).toBeGreaterThan(0);
    gateway.store.remove(tenantId);
    expect(await tenantLines()).toEqual([]);
  });
});

/** `/ws/status/<code>` answers the upgrade with that status; any other path is a `ws` echo. */
function startStatusWebSocketOrigin(): Promise<WebSocketOrigin> {
  return startWebSocketOrigin({
    hello: false,
    refuse: (path) => {
      const status = /\/status\/(\d{3})$/.exec(path)?.[1];
      return status === undefined ? undefined : Number(status);
    },
  });
}

/**
 * Regression: the WebSocket series took their status from the origin (an origin could mint a series per
 * invented status) and stayed in /metrics after their tenant left the replica's config.
 */
describe('WebSocket series of removed tenants', () => {
  let origin: WebSocketOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startStatusWebSocketOrigin();
    gateway = await startTestGateway();
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  let version = 1;
  /** A tenant's origin and route keep their ids across its versions, so open WebSockets stay admitted. */
  const ids = new Map<string, { originId: string; routeId: string }>();
  const applyTenant = (tenantId: string, subdomain: string) => {
    const { originId, routeId } = ids.get(tenantId) ?? { originId: randomUUID(), routeId: randomUUID() };
    ids.set(tenantId, { originId, routeId });
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        version: version++,
        subdomain,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ id: routeId, origin_id: originId, path_pattern: '/ws/*' }],
      }),
    );
  };

  /** Resolves with the open socket, or rejects with the status the upgrade got. */
  const connect = (subdomain: string, path: string): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const socket = new WebSocket(`${gateway.url.replace('http', 'ws')}${path}`, {
        headers: { host: `${subdomain}.localhost` },
      });
      socket.once('unexpected-response', (_req, res) => {
        res.resume();
        reject(new Error(`status ${res.statusCode}`));
      });
      socket.once('error', reject);
      socket.once('open', () => resolve(socket));
    });
  const close = (socket: WebSocket) =>
    new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      socket.close();
    });

  const lines = async (tenantId: string, family: string): Promise<string[]> => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    return text.split('\n').filter((l) => l.startsWith(`${family}{`) && l.includes(tenantId));
  };
  const UPGRADES = 'vantageedge_gateway_websocket_upgrades_total';
  const OPEN = 'vantageedge_gateway_websocket_connections_open';

  it('bounds the status label of upgrades an origin answers, as error_responses_total does', async () => {
    const tenantId = randomUUID();
    applyTenant(tenantId, 'ws-statuses');
    for (const status of [404, 460, 461, 599]) {
      await expect(connect('ws-statuses', `/ws/status/${status}`)).rejects.toThrow(`status ${status}`);
    }
    await close(await connect('ws-statuses', '/ws/echo'));
    await expect(connect('ws-statuses', '/elsewhere')).rejects.toThrow('status 404');
    expect((await lines(tenantId, UPGRADES)).sort()).toEqual(
      [
        `${UPGRADES}{tenant="${tenantId}",status="101"} 1`,
        // The gateway's route_not_found and the origin's named 404.
        `${UPGRADES}{tenant="${tenantId}",status="404"} 2`,
        `${UPGRADES}{tenant="${tenantId}",status="4xx"} 2`,
        `${UPGRADES}{tenant="${tenantId}",status="5xx"} 1`,
      ].sort(),
    );
  });

  it('removes a removed tenant’s upgrade series at once and closes its open WebSockets, whose gauge goes with them', async () => {
    const idle = randomUUID();
    const busy = randomUUID();
    applyTenant(idle, 'ws-idle');
    applyTenant(busy, 'ws-busy');
    await close(await connect('ws-idle', '/ws/a'));
    const first = await connect('ws-busy', '/ws/a');
    const second = await connect('ws-busy', '/ws/b');
    const secondClosed = new Promise<number>((resolve) => second.once('close', (code) => resolve(code)));
    await close(first);
    await vi.waitFor(async () => expect(await lines(busy, OPEN)).toEqual([`${OPEN}{tenant="${busy}"} 1`]), {
      timeout: 10_000,
    });
    await vi.waitFor(async () => expect(await lines(idle, OPEN)).toEqual([`${OPEN}{tenant="${idle}"} 0`]), {
      timeout: 10_000,
    });
    expect(await lines(busy, UPGRADES)).toEqual([`${UPGRADES}{tenant="${busy}",status="101"} 2`]);

    // A snapshot replacing the tenant keeps its series, and its open WebSocket (still admitted).
    applyTenant(busy, 'ws-busy');
    expect(await lines(busy, UPGRADES)).toHaveLength(1);
    expect(await lines(busy, OPEN)).toEqual([`${OPEN}{tenant="${busy}"} 1`]);

    gateway.store.remove(idle);
    gateway.store.remove(busy);
    expect(await lines(idle, UPGRADES)).toEqual([]);
    expect(await lines(idle, OPEN)).toEqual([]);
    expect(await lines(busy, UPGRADES)).toEqual([]);
    // The removal closes the tenant's open WebSocket (going away); its gauge goes with the connection,
    // not before (removed while open, it would come back at -1 on the close).
    expect(await secondClosed).toBe(1001);
    await vi.waitFor(async () => expect(await lines(busy, OPEN)).toEqual([]), { timeout: 10_000 });
  });
});

// Regression test: a request still waiting for its retry when its tenant left the config counted the
// retry afterwards, bringing back a series nothing would remove.
describe('retries of a request in flight when its tenant is removed', () => {
  let slow: Server;
  let gateway: TestGateway;
  beforeAll(async () => {
    slow = createServer((req, res) => {
      req.resume();
      setTimeout(() => res.writeHead(503).end('no'), 300);
    });
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway({}, { registry: new Registry() });
  });
  afterAll(async () => {
    await gateway?.close();
    await new Promise((resolve) => slow?.close(resolve));
  });

  it('leaves no series of the removed tenant', async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'retry-series',
        origins: [{ id: originId, targets: [url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/*',
            retries: {
              attempts: 2,
              on: ['503'],
              methods: ['GET'],
              backoff: { base_ms: 0, max_ms: 0 },
              budget: { percent: 100, min_retries: 10 },
            },
          },
        ],
      }),
    );
    const pending = send(gateway, 'retry-series.localhost', '/x');
    await new Promise((resolve) => setTimeout(resolve, 100));
    gateway.store.remove(tenantId);
    await pending;
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics.split('\n').filter((line) => line.includes(tenantId))).toEqual([]);
  });
});

// Regression test: a request of a tenant that no route took, answered before its tenant left the config
// and ended after (an HTTP/2 client that opened no flow-control window for the answer, then reset the
// stream), was counted under the removed tenant, bringing back series nothing would remove: any client
// could leave some behind for every tenant removed.
describe('a request no route took, ending after its tenant was removed', () => {
  let gateway: TestGateway;
  let session: ClientHttp2Session;
  beforeAll(async () => {
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { registry: new Registry() });
    session = connectHttp2(gateway.url, { settings: { initialWindowSize: 0 } });
    session.on('error', () => {});
  });
  afterAll(async () => {
    session?.destroy();
    await gateway?.close();
  });

  it('leaves no series of the removed tenant', async () => {
    const tenantId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'unrouted-series',
        origins: [{ id: randomUUID(), targets: ['http://127.0.0.1:9'] }],
        routes: [],
      }),
    );
    const tenantLines = async () =>
      (await (await fetch(`${gateway.adminUrl}/metrics`)).text())
        .split('\n')
        .filter((line) => line.startsWith('vantageedge_gateway_') && line.includes(tenantId));
    expect((await send(gateway, 'unrouted-series.localhost', '/nothing-here')).status).toBe(404);
    expect(await tenantLines()).not.toEqual([]);

    const requestId = randomUUID();
    const stream = session.request(
      { ':path': '/nothing-here', ':authority': 'unrouted-series.localhost', 'x-request-id': requestId },
      { endStream: true },
    );
    stream.on('error', () => {});
    const status = await new Promise((resolve) =>
      stream.once('response', (head) => resolve(head[':status'])),
    );
    expect(status).toBe(404);
    gateway.store.remove(tenantId);
    expect(await tenantLines()).toEqual([]);

    stream.close(constants.NGHTTP2_CANCEL);
    await vi.waitFor(
      () => expect(gateway.logLines.some((line) => line['request_id'] === requestId)).toBe(true),
      {
        timeout: 10_000,
      },
    );
    expect(await tenantLines()).toEqual([]);
  });
});

// Regression test: a request waiting for its rate-limit decision (a Redis call) when its tenant left
// the config was counted afterwards under the removed tenant, in a series nothing would remove.
describe('a rate-limit decision arriving after its tenant was removed', () => {
  let origin: { server: Server; url: string };
  let gateway: TestGateway;
  let releaseStore = () => {};
  let storeCalled = () => {};
  beforeAll(async () => {
    origin = await startStatusOrigin();
    const registry = new Registry();
    const memory = new MemoryLimitStore();
    // The first call waits until the test lets it go, as a slow Redis does.
    const held = new Promise<void>((resolve) => {
      releaseStore = resolve;
    });
    const limiter = createRateLimiter({
      store: {
        consume: (requests) => {
          storeCalled();
          return held.then(() => memory.consume(requests));
        },
      },
      registry,
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({}, { registry, stages: [createRateLimitStage(limiter)] });
  });
  afterAll(async () => {
    releaseStore();
    await gateway?.close();
    await new Promise((resolve) => origin?.server.close(resolve));
  });

  it('leaves no series of the removed tenant', async () => {
    const tenantId = randomUUID();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'late-decision',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/*',
            rate_limit: { requests_per_second: 100, burst: 100 },
          },
        ],
      }),
    );
    const called = new Promise<void>((resolve) => {
      storeCalled = resolve;
    });
    const pending = send(gateway, 'late-decision.localhost', '/x');
    await called;
    gateway.store.remove(tenantId);
    releaseStore();
    await pending;
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics.split('\n').filter((line) => line.includes(tenantId))).toEqual([]);
  });
});

// Regression test: a rate-limit decision arriving after its route left the config (replaced in a new
// version of the tenant, or the tenant removed and added again) brought back the route's decision
// series under a tenant still configured, where nothing removed it until the tenant's next change.
describe('a rate-limit decision arriving after its route left the config', () => {
  let origin: { server: Server; url: string };
  let gateway: TestGateway;
  let holding = false;
  let release = () => {};
  let storeCalled = () => {};
  beforeAll(async () => {
    origin = await startStatusOrigin();
    const registry = new Registry();
    const memory = new MemoryLimitStore();
    const limiter = createRateLimiter({
      store: {
        // While holding, a call waits until the test lets it go, as a slow Redis does.
        consume: (requests) => {
          if (!holding) return memory.consume(requests);
          storeCalled();
          return new Promise<void>((resolve) => {
            release = resolve;
          }).then(() => memory.consume(requests));
        },
      },
      registry,
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({}, { registry, stages: [createRateLimitStage(limiter)] });
  });
  afterAll(async () => {
    release();
    await gateway?.close();
    await new Promise((resolve) => origin?.server.close(resolve));
  });

  const tenantId = randomUUID();
  const originId = randomUUID();
  let version = 0;
  const withRoute = (routeId: string) =>
    buildSnapshot({
      tenantId,
      version: ++version,
      subdomain: 'late-route-decision',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          id: routeId,
          origin_id: originId,
          path_pattern: '/*',
          rate_limit: { requests_per_second: 100, burst: 100 },
        },
      ],
    });
  const applyRoute = (routeId: string) => gateway.store.apply(withRoute(routeId));
  const decisionLines = async (): Promise<string[]> =>
    (await (await fetch(`${gateway.adminUrl}/metrics`)).text())
      .split('\n')
      .filter((line) => line.startsWith('vantageedge_gateway_ratelimit_decisions_total{'))
      .filter((line) => line.includes(tenantId));
  /** A request whose decision is held until `change` ran, then counted; its status. */
  const decidedAfter = async (change: () => void): Promise<number> => {
    const called = new Promise<void>((resolve) => {
      storeCalled = resolve;
    });
    holding = true;
    const pending = send(gateway, 'late-route-decision.localhost', '/x');
    await called;
    holding = false;
    change();
    release();
    return (await pending).status;
  };

  it('counts nothing for a route a new version of the tenant replaced', async () => {
    const replaced = randomUUID();
    const current = randomUUID();
    applyRoute(replaced);
    expect(await decidedAfter(() => applyRoute(current))).toBe(200);
    expect((await send(gateway, 'late-route-decision.localhost', '/y')).status).toBe(200);
    const lines = await decisionLines();
    expect(lines.filter((line) => line.includes(replaced))).toEqual([]);
    expect(lines.filter((line) => line.includes(current))).toHaveLength(1);
  });

  it('counts nothing for a route of the tenant before it was removed and added again', async () => {
    const removed = randomUUID();
    const current = randomUUID();
    applyRoute(removed);
    // Its origin closed with the removed version: the request itself is answered 503.
    await decidedAfter(() => {
      gateway.store.remove(tenantId);
      applyRoute(current);
    });
    expect((await send(gateway, 'late-route-decision.localhost', '/y')).status).toBe(200);
    const lines = await decisionLines();
    expect(lines.filter((line) => line.includes(removed))).toEqual([]);
    expect(lines.filter((line) => line.includes(current))).toHaveLength(1);
  });

  it('counts nothing for a route of the tenant before it was removed, while it is added again in slices', async () => {
    const removed = randomUUID();
    const current = randomUUID();
    applyRoute(removed);
    // The new version is compiled up to its first turn of the event loop, and held there.
    let resume = () => {};
    const resumed = new Promise<void>((resolve) => {
      resume = resolve;
    });
    const heldSlices = new (class extends EventLoopSlices {
      override async next(): Promise<void> {
        await resumed;
        await super.next();
      }
    })({ budgetMs: 0 });
    let adding: Promise<boolean> | undefined;
    try {
      await decidedAfter(() => {
        gateway.store.remove(tenantId);
        adding = gateway.store.applyInSlices(withRoute(current), heldSlices);
      });
      expect((await decisionLines()).filter((line) => line.includes(removed))).toEqual([]);
    } finally {
      resume();
    }
    expect(await adding).toBe(true);
    expect((await send(gateway, 'late-route-decision.localhost', '/y')).status).toBe(200);
    const lines = await decisionLines();
    expect(lines.filter((line) => line.includes(removed))).toEqual([]);
    expect(lines.filter((line) => line.includes(current))).toHaveLength(1);
  });
});
