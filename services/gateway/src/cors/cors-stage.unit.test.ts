import { randomUUID } from 'node:crypto';
import type * as corsRules from '@vantageedge/shared/gateway-policies/cors-rules';
import { describe, expect, it, vi } from 'vitest';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import type { GatewayExchange } from '../pipeline/exchange.js';
import { REPLICA_VERDICTS_REMEMBERED } from '../pipeline/remembered-verdicts.js';
import type { RouteStage } from '../pipeline/stage.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCorsPolicy } from './cors-stage.js';

const decisions = vi.hoisted(() => ({ count: 0 }));
vi.mock('@vantageedge/shared/gateway-policies/cors-rules', async (importOriginal) => {
  const actual = await importOriginal<typeof corsRules>();
  return {
    ...actual,
    originAllowed: (...args: Parameters<typeof actual.originAllowed>) => {
      decisions.count++;
      return actual.originAllowed(...args);
    },
  };
});

/**
 * Regression: every CORS route remembered up to 64 Origins of its own, so a tenant with 1,000 CORS
 * routes whose clients sent many distinct Origins held 64,000 of them (≈50 MB) on every replica. A
 * tenant's routes share one budget of remembered Origins.
 */
describe('CORS stage: remembered origins', () => {
  const tenantId = randomUUID();
  const originId = randomUUID();
  const ROUTES = 1000;
  const ORIGINS_PER_ROUTE = 64;

  const newStore = () => {
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    store.setPipeline({ policies: [createCorsPolicy()] });
    return store;
  };

  const snapshot = (version: number) =>
    buildSnapshot({
      tenantId,
      version,
      subdomain: 'corsmem',
      origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
      routes: Array.from({ length: ROUTES }, (_, i) => ({
        origin_id: originId,
        path_pattern: `/r${i}/*`,
        // A distinct policy per route, allowing every origin its clients send.
        cors: { allow_origins: [`https://*.r${i}.example`], allow_credentials: true },
      })),
    });

  const corsStages = (store: GatewayConfigStore): RouteStage[] =>
    store.get(tenantId)!.routes.map((route) => route.stages.all.find((stage) => stage.name === 'cors')!);

  const request = (stage: RouteStage, origin: string) => {
    const res = { setHeader() {} };
    stage.onRequest!({
      req: { headers: { origin } },
      res,
      corsPreflight: false,
    } as unknown as GatewayExchange);
  };

  /** Origins still remembered after the requests: those the same requests, the latest first, do not decide again. */
  const rememberedAfter = (requests: ReadonlyArray<{ stage: RouteStage; origin: string }>) => {
    for (const { stage, origin } of requests) request(stage, origin);
    decisions.count = 0;
    for (const { stage, origin } of requests.toReversed()) request(stage, origin);
    return requests.length - decisions.count;
  };

  const requestsTo = (stages: readonly RouteStage[]) =>
    stages.flatMap((stage, i) =>
      Array.from({ length: ORIGINS_PER_ROUTE }, (_, j) => ({ stage, origin: `https://c${j}.r${i}.example` })),
    );

  it("bounds the origins a tenant's 1,000 CORS routes remember together, across versions", () => {
    const store = newStore();
    store.apply(snapshot(1));
    const first = corsStages(store);
    expect(new Set(first).size).toBe(ROUTES);
    const remembered = rememberedAfter(requestsTo(first));
    expect(remembered).toBeGreaterThan(0);
    expect(remembered).toBeLessThanOrEqual(1024);

    // A new version with new routes, while requests to the old one finish: the budget is the tenant's.
    store.apply(snapshot(2));
    const second = corsStages(store);
    expect(second.some((stage) => first.includes(stage))).toBe(false);
    expect(rememberedAfter([...requestsTo(first), ...requestsTo(second)])).toBeLessThanOrEqual(1024);
  });

  // Regression: each tenant's budget was the only bound, so a client sending distinct allowed Origins
  // to every tenant with a wildcard CORS route made a replica keep 1,024 of them per tenant (≈0.7 MB
  // each at 300 characters: 700 MB for 1,000 tenants).
  it('bounds the origins all tenants remember together on a replica', () => {
    const TENANTS = 80;
    const ROUTES_PER_TENANT = 16; // each route remembers 64: the tenant's 1,024 in all
    const store = newStore();
    const requests: Array<{ stage: RouteStage; origin: string }> = [];
    for (let t = 0; t < TENANTS; t++) {
      const id = randomUUID();
      store.apply(
        buildSnapshot({
          tenantId: id,
          subdomain: `corsreplica${t}`,
          origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
          routes: Array.from({ length: ROUTES_PER_TENANT }, (_, r) => ({
            origin_id: originId,
            path_pattern: `/r${r}/*`,
            cors: { allow_origins: [`https://*.r${r}.example`] },
          })),
        }),
      );
      store.get(id)!.routes.forEach((route, r) => {
        const stage = route.stages.all.find((s) => s.name === 'cors')!;
        for (let o = 0; o < ORIGINS_PER_ROUTE; o++)
          requests.push({ stage, origin: `https://c${o}.t${t}.r${r}.example` });
      });
    }
    expect(rememberedAfter(requests)).toBeLessThanOrEqual(REPLICA_VERDICTS_REMEMBERED);
  });
});
