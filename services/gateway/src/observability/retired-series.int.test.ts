import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache } from '../cache/response-cache.js';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

// The cache's hit-ratio gauge is rebuilt from the cache's own per-route totals at every scrape.
const NOT_COVERED = 'vantageedge_gateway_cache_hit_ratio';

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
    return text
      .split('\n')
      .filter(
        (l) => l.startsWith('vantageedge_gateway_') && !l.startsWith(NOT_COVERED) && l.includes(tenantId),
      );
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
