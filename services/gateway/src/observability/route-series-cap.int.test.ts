import { randomUUID } from 'node:crypto';
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
import { type HttpOrigin, startFixedOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';

const MAX_ROUTE_SERIES = 8;
const TENANT_SHARE = 0.25; // 2 route labels per tenant
const TENANTS = 6;
const ROUTES_PER_TENANT = 5;

/**
 * Regression: route-labelled series had a bound per tenant (its routes) but none per replica, so many
 * tenants with many routes of traffic grew every scrape of every replica without limit.
 */
describe('replica-wide bound on route-labelled series', () => {
  let origin: HttpOrigin;
  let originUrl: string;
  let gateway: TestGateway;
  const run = randomUUID().slice(0, 8);
  const tenants = Array.from({ length: TENANTS }, (_, t) => ({
    id: randomUUID(),
    subdomain: `cap-${run}-${t}`,
    originId: randomUUID(),
    routes: Array.from({ length: ROUTES_PER_TENANT }, () => randomUUID()),
  }));
  /** Route `routes[r]` serves `/r<r>/*`. */
  const snapshotOf = (tenant: (typeof tenants)[number], version: number, routes: readonly string[]) =>
    buildSnapshot({
      tenantId: tenant.id,
      version,
      subdomain: tenant.subdomain,
      origins: [{ id: tenant.originId, targets: [originUrl] }],
      routes: routes.map((id, r) => ({
        id,
        origin_id: tenant.originId,
        path_pattern: `/r${r}/*`,
        rate_limit: { requests_per_second: 1000, burst: 100_000 },
        cache_policy: { ttl_seconds: 60 },
      })),
    });

  beforeAll(async () => {
    origin = await startFixedOrigin();
    originUrl = origin.url;
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
      {
        GATEWAY_METRICS_MAX_ROUTE_SERIES: String(MAX_ROUTE_SERIES),
        GATEWAY_METRICS_ROUTE_SERIES_TENANT_SHARE: String(TENANT_SHARE),
      },
      { registry, stages: [createRateLimitStage(limiter), createCacheStage(cache)] },
    );
    for (const tenant of tenants) gateway.store.apply(snapshotOf(tenant, 1, tenant.routes));
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const ourLines = async (family: string): Promise<string[]> => {
    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    return text
      .split('\n')
      .filter((l) => l.startsWith(`${family}{`) && tenants.some((t) => l.includes(`tenant="${t.id}"`)));
  };
  const routeLabels = (lines: string[]): Set<string> =>
    new Set(lines.map((l) => `${/tenant="([^"]*)"/.exec(l)![1]} ${/route="([^"]*)"/.exec(l)![1]}`));
  const servedBy = async (tenantId: string, route?: string): Promise<number> =>
    (await ourLines('vantageedge_gateway_request_duration_seconds_count'))
      .filter(
        (l) => l.includes(`tenant="${tenantId}"`) && (route === undefined || l.includes(`route="${route}"`)),
      )
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);

  it('exports at most the bound’s route labels, fairly between tenants, and tenant totals stay exact', async () => {
    for (const tenant of tenants) {
      for (let r = 0; r < ROUTES_PER_TENANT; r++) {
        for (let i = 0; i <= r; i++) {
          expect((await send(gateway, `${tenant.subdomain}.localhost`, `/r${r}/x`)).status).toBe(200);
        }
      }
    }
    const served = (ROUTES_PER_TENANT * (ROUTES_PER_TENANT + 1)) / 2;

    for (const family of [
      'vantageedge_gateway_request_duration_seconds_count',
      'vantageedge_gateway_upstream_duration_seconds_count',
      'vantageedge_gateway_ratelimit_decisions_total',
      'vantageedge_gateway_cache_lookups_total',
      'vantageedge_gateway_cache_hit_ratio',
    ]) {
      const labels = [...routeLabels(await ourLines(family))];
      const ownRoutes = labels.filter((label) => !label.endsWith(' other'));
      expect(ownRoutes.length, family).toBeLessThanOrEqual(MAX_ROUTE_SERIES);
      for (const tenant of tenants) {
        const ofTenant = ownRoutes.filter((label) => label.startsWith(`${tenant.id} `));
        expect(ofTenant.length, family).toBeLessThanOrEqual(MAX_ROUTE_SERIES * TENANT_SHARE);
      }
    }
    for (const tenant of tenants) expect(await servedBy(tenant.id)).toBe(served);

    const folded = (await (await fetch(`${gateway.adminUrl}/metrics`)).text())
      .split('\n')
      .filter((l) => l.startsWith('vantageedge_gateway_metrics_folded_routes{'));
    const foldedOfOurs = folded
      .filter((l) => tenants.some((t) => l.includes(`tenant="${t.id}"`)))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    expect(foldedOfOurs).toBe(TENANTS * ROUTES_PER_TENANT - MAX_ROUTE_SERIES);
  });

  it('removes a dropped route’s series and gives its label to a route compiled after it', async () => {
    const tenant = tenants[0]!;
    const ownLabels = async (): Promise<string[]> =>
      [...routeLabels(await ourLines('vantageedge_gateway_request_duration_seconds_count'))]
        .filter((label) => label.startsWith(`${tenant.id} `) && !label.endsWith(' other'))
        .map((label) => label.split(' ')[1]!);
    const labelled = await ownLabels();
    expect(labelled).toHaveLength(MAX_ROUTE_SERIES * TENANT_SHARE);
    const [dropped, kept] = labelled as [string, string];
    const before = await servedBy(tenant.id);
    const servedByDropped = await servedBy(tenant.id, dropped);
    // Every other route of the replica still holds its label: only the dropped one's is free.
    const routes = [kept, ...tenant.routes.filter((id) => id !== dropped && id !== kept), randomUUID()];
    gateway.store.apply(snapshotOf(tenant, 2, routes));

    expect(await (await fetch(`${gateway.adminUrl}/metrics`)).text()).not.toContain(`route="${dropped}"`);
    for (let r = 0; r < routes.length; r++) {
      expect((await send(gateway, `${tenant.subdomain}.localhost`, `/r${r}/x`)).status).toBe(200);
    }
    const now = await ownLabels();
    expect(now).toHaveLength(MAX_ROUTE_SERIES * TENANT_SHARE);
    expect(now).toContain(kept);
    expect(routes).toEqual(expect.arrayContaining(now));
    expect(await servedBy(tenant.id)).toBe(before - servedByDropped + routes.length);
  });
});
