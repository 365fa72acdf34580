import { randomUUID } from 'node:crypto';
import {
  type OriginConfig,
  rateLimitPolicy,
  type TenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Authenticator } from '../auth/authenticator.js';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { GatewayMetrics, RouteMetrics } from '../observability/gateway-metrics.js';
import { createGatewayHandler } from '../pipeline/gateway-handler.js';
import type { RouteCompileContext, RoutePolicy } from '../pipeline/stage.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { UpstreamSet } from '../upstream/types.js';
import type { CompiledTenant } from './compiled-tenant.js';
import { GatewayConfigStore } from './gateway-config-store.js';

/**
 * A new version of a tenant in which few routes changed compiles only those routes: the others keep
 * their compiled route (stages, metric series) when nothing their compilation reads has changed.
 */
function harness() {
  const upstreams: Array<{ origin: OriginConfig; closed: boolean; set: UpstreamSet }> = [];
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: (origin) => {
      const entry = {
        origin,
        closed: false,
        set: {
          acquire: () => undefined,
          close: async () => {
            entry.closed = true;
          },
        } satisfies UpstreamSet,
      };
      upstreams.push(entry);
      return entry.set;
    },
  });
  const compiled: RouteCompileContext[] = [];
  const retired: Array<{ previous: CompiledTenant; replacement: CompiledTenant | undefined }> = [];
  const counting: RoutePolicy = {
    name: 'counting',
    compileRoute(context) {
      compiled.push(context);
      return { name: 'counting', onRequest: () => 'continue' };
    },
    tenantRetired: (previous, replacement) => retired.push({ previous, replacement }),
  };
  store.setPipeline({ policies: [counting], metrics: new GatewayMetrics(new Registry()) });
  return { store, upstreams, compiled, retired };
}

const tenantId = '00000000-0000-4000-8000-0000000000aa';
const origins = [randomUUID(), randomUUID(), randomUUID()].map((id, index) => ({
  id,
  targets: [`http://10.0.0.${index + 1}:80`],
}));

function largeTenant(routes = 200): TenantSnapshot {
  return buildSnapshot({
    tenantId,
    version: 1,
    subdomain: 'large',
    origins,
    routes: Array.from({ length: routes }, (_, index) => ({
      origin_id: origins[index % 2]!.id,
      path_pattern: `/r${index}/*`,
    })),
  });
}

/** The next version as the snapshot decoder hands it over: unchanged routes are the same objects. */
function next(snapshot: TenantSnapshot, changes: Partial<TenantSnapshot> = {}): TenantSnapshot {
  return { ...snapshot, version: String(BigInt(snapshot.version) + 1n), ...changes };
}

const routeIds = (contexts: readonly RouteCompileContext[]) => contexts.map((context) => context.route.id);

/** A store whose routes compile every policy of a gateway's handler, rate limits and the cache included. */
function storeWithGatewayStages(): GatewayConfigStore {
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
  });
  createGatewayHandler({
    store,
    authenticator: new Authenticator({ apiKeyPepper: 'route-reuse-pepper-0123456789abcdef' }),
    maxBodyBytes: 10 * 1024 * 1024,
    stages: [
      createRateLimitStage({ storeDegraded: false } as unknown as RateLimiter),
      createCacheStage({
        prepareTenant: async () => {},
        tenantBoundChanged: async () => {},
      } as unknown as ResponseCache),
    ],
  });
  return store;
}
describe('GatewayConfigStore: applying a version in which few routes changed', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('compiles only the changed route of 200 and keeps the others as compiled', () => {
    const { store, compiled } = harness();
    const v1 = largeTenant();
    store.apply(v1);
    const before = store.get(tenantId)!;
    compiled.length = 0;

    const changed = { ...v1.routes[7]!, path_pattern: '/changed/*' };
    store.apply(next(v1, { routes: v1.routes.with(7, changed) }));

    expect(routeIds(compiled)).toEqual([changed.id]);
    const after = store.get(tenantId)!;
    expect(after.routes.filter((route, index) => route === before.routes[index])).toHaveLength(199);
    expect(after.router.match('GET', '/changed/x')?.config).toBe(changed);
    expect(after.router.match('GET', '/r7/x')).toBeUndefined();
    expect(after.router.match('GET', '/r8/x')?.config).toBe(v1.routes[8]);
  });

  it('compiles again the routes whose origin changed (one they split to included), and only them', () => {
    const { store, compiled, upstreams } = harness();
    const v1 = buildSnapshot({
      tenantId,
      version: 1,
      subdomain: 'large',
      origins,
      routes: [
        { origin_id: origins[0]!.id, path_pattern: '/a/*' },
        { origin_id: origins[1]!.id, path_pattern: '/b/*' },
        {
          origin_id: origins[0]!.id,
          path_pattern: '/split/*',
          traffic_split: {
            origins: [
              { origin_id: origins[0]!.id, weight: 1 },
              { origin_id: origins[2]!.id, weight: 1 },
            ],
          },
        },
      ],
    });
    store.apply(v1);
    compiled.length = 0;
    const moved = { ...v1.origins[2]!, targets: [{ url: 'http://10.0.9.9:80', weight: 1 }] };
    store.apply(next(v1, { origins: v1.origins.with(2, moved) }));

    expect(routeIds(compiled)).toEqual([v1.routes[2]!.id]);
    expect(compiled[0]!.origins.get(moved.id)?.config).toBe(moved);
    const after = store.get(tenantId)!;
    expect(after.router.match('GET', '/split/x')?.origin?.config).toBe(v1.origins[0]);
    expect(upstreams.map((entry) => [entry.origin.targets[0]!.url, entry.closed])).toEqual([
      ['http://10.0.0.1:80', false],
      ['http://10.0.0.2:80', false],
      ['http://10.0.0.3:80', true],
      ['http://10.0.9.9:80', false],
    ]);
  });

  it('compiles every route again when a tenant setting or an API key quota changed', () => {
    const { store, compiled } = harness();
    const v1 = largeTenant(20);
    store.apply(v1);
    compiled.length = 0;

    const limited = {
      ...v1.tenant,
      settings: { ...v1.tenant.settings, ip_rules: { allow: [], deny: ['192.0.2.0/24'] } },
    };
    const v2 = next(v1, { tenant: limited });
    store.apply(v2);
    expect(compiled).toHaveLength(20);
    expect(compiled.every((context) => context.tenant.settings.ip_rules?.deny[0] === '192.0.2.0/24')).toBe(
      true,
    );

    compiled.length = 0;
    const key = buildSnapshot({
      tenantId,
      subdomain: 'large',
      origins: [],
      routes: [],
      apiKeys: [{ key_hash: 'a'.repeat(64), quota: { requests_per_day: 10 } }],
    }).api_keys;
    store.apply(next(v2, { api_keys: key }));
    expect(compiled).toHaveLength(20);
    expect(compiled[0]!.apiKeyQuotas.get(key[0]!.id)).toEqual({ requests_per_day: 10 });

    compiled.length = 0;
    store.apply(next(next(v2, { api_keys: key })));
    expect(compiled).toHaveLength(0);
  });

  it('compiles again only the stages of the policies whose inputs changed', () => {
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
    });
    const compiled = { routeOnly: 0, tenantLimit: 0 };
    const routeOnly: RoutePolicy = {
      name: 'route_only',
      compiledFrom: () => '',
      compileRoute() {
        compiled.routeOnly++;
        return { name: 'route_only', onRequest: () => 'continue' };
      },
    };
    const tenantLimit: RoutePolicy = {
      name: 'tenant_limit',
      compiledFrom: (tenant) => JSON.stringify(tenant.settings.rate_limit ?? null),
      compileRoute({ tenant }) {
        compiled.tenantLimit++;
        const limit = tenant.settings.rate_limit?.requests_per_second;
        return { name: `tenant_limit ${limit}`, onRequest: () => 'continue' };
      },
    };
    store.setPipeline({ policies: [routeOnly, tenantLimit], metrics: new GatewayMetrics(new Registry()) });
    const v1 = largeTenant();
    store.apply(v1);
    const first = store.get(tenantId)!;
    expect(compiled).toEqual({ routeOnly: 200, tenantLimit: 200 });

    // Renamed: no policy reads the name, so every route is kept as compiled.
    const v2 = next(v1, { tenant: { ...v1.tenant, name: 'renamed' } });
    store.apply(v2);
    expect(compiled).toEqual({ routeOnly: 200, tenantLimit: 200 });
    expect(store.get(tenantId)!.routes.every((route, index) => route === first.routes[index])).toBe(true);

    // A tenant-wide rate limit: only the policy reading it compiles again; the other stages are kept.
    const limited = rateLimitPolicy.parse({ requests_per_second: 5, scope: 'tenant' });
    store.apply(
      next(v2, { tenant: { ...v2.tenant, settings: { ...v2.tenant.settings, rate_limit: limited } } }),
    );
    expect(compiled).toEqual({ routeOnly: 200, tenantLimit: 400 });
    const after = store.get(tenantId)!;
    after.routes.forEach((route, index) => {
      const before = first.routes[index]!;
      expect(route.stages.all.map((stage) => stage.name)).toEqual(['route_only', 'tenant_limit 5']);
      expect(route.stages.all[0]).toBe(before.stages.all[0]);
      expect(route.metrics).toBe(before.metrics);
    });
    expect(after.router.match('GET', '/r8/x')?.stages.request.map((stage) => stage.name)).toEqual([
      'route_only',
      'tenant_limit 5',
    ]);
  });

  it("keeps the gateway's own stages when a tenant setting none of them reads changes", () => {
    const store = storeWithGatewayStages();
    const v1 = buildSnapshot({
      tenantId,
      version: 1,
      subdomain: 'large',
      origins,
      routes: Array.from({ length: 50 }, (_, index) => ({
        origin_id: origins[0]!.id,
        path_pattern: `/r${index}/*`,
        auth_mode: 'apikey_required' as const,
        request_headers: { set: { 'x-route': `r${index}` } },
        response_headers: { set: { 'x-served-by': 'gateway' } },
        cors: { allow_origins: [`https://app${index}.example.com`] },
        ip_rules: { allow: [], deny: ['192.0.2.0/24'] },
        rate_limit: { requests_per_second: 10, scope: 'ip' },
        cache_policy: { ttl_seconds: 30 },
        retries: { attempts: 2 },
      })),
    });
    store.apply(v1);
    const first = store.get(tenantId)!;
    const stageNames = first.routes[0]!.stages.all.map((stage) => stage.name);
    expect(stageNames).toEqual(
      expect.arrayContaining(['ip_rules', 'cors', 'auth', 'request_transform', 'rate_limit', 'cache']),
    );

    // The tenant's name: read by no route stage.
    const v2 = next(v1, { tenant: { ...v1.tenant, name: 'renamed' } });
    store.apply(v2);
    const renamed = store.get(tenantId)!;
    expect(renamed.routes.filter((route, index) => route === first.routes[index])).toHaveLength(50);

    /** Each route's stages are the same as before but those of `changed`, which are new. */
    const expectNewStages = (before: CompiledTenant, after: CompiledTenant, changed: string) => {
      after.routes.forEach((route, index) => {
        const earlier = before.routes[index]!.stages.all;
        expect(route.stages.all.map((stage) => stage.name)).toEqual(stageNames);
        route.stages.all.forEach((stage, at) => {
          if (stage.name === changed) expect(stage).not.toBe(earlier[at]);
          else expect(stage).toBe(earlier[at]);
        });
      });
    };

    // The tenant's OIDC provider decides who its jwt routes admit, which the cache keys on.
    const oidc = {
      issuer: 'https://id.example.com',
      audience: 'api',
      jwks_url: 'https://id.example.com/jwks',
    };
    const v3 = next(v2, { tenant: { ...v2.tenant, settings: { ...v2.tenant.settings, oidc } } });
    store.apply(v3);
    const withOidc = store.get(tenantId)!;
    expectNewStages(renamed, withOidc, 'cache');

    // A tenant-wide rate limit: each route's rate_limit stage is new, its other stages are kept.
    const limit = rateLimitPolicy.parse({ requests_per_second: 100, scope: 'tenant' });
    store.apply(
      next(v3, { tenant: { ...v3.tenant, settings: { ...v3.tenant.settings, rate_limit: limit } } }),
    );
    expectNewStages(withOidc, store.get(tenantId)!, 'rate_limit');
  });

  // An origin's settings (its timeout, a health check, a target) are a few bytes of one command, but every
  // route on it used to compile every stage again on every replica: a tenant of 370 routes of header
  // templates on one origin cost each replica 35–170 ms of CPU per version, against 1–2 ms for a rename.
  it('keeps the stages that do not read origins of the routes whose origin changed', () => {
    const store = storeWithGatewayStages();
    const v1 = buildSnapshot({
      tenantId,
      version: 1,
      subdomain: 'large',
      origins,
      routes: Array.from({ length: 20 }, (_, index) => ({
        origin_id: origins[0]!.id,
        path_pattern: `/r${index}/*`,
        auth_mode: 'apikey_required' as const,
        request_headers: { set: { 'x-route': `r${index}` } },
        cors: { allow_origins: [`https://app${index}.example.com`] },
        ip_rules: { allow: [], deny: ['192.0.2.0/24'] },
        rate_limit: { requests_per_second: 10, scope: 'ip' },
        cache_policy: { ttl_seconds: 30 },
        retries: { attempts: 2 },
        ...(index === 0
          ? {
              traffic_split: {
                origins: [
                  { origin_id: origins[0]!.id, weight: 1 },
                  { origin_id: origins[1]!.id, weight: 1 },
                ],
              },
            }
          : {}),
      })),
    });
    store.apply(v1);
    const before = store.get(tenantId)!;
    const names = before.routes[0]!.stages.all.map((stage) => stage.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'ip_rules',
        'cors',
        'auth',
        'rate_limit',
        'cache',
        'upstream_policy',
        'traffic_split',
      ]),
    );

    const slower = { ...v1.origins[0]!, timeout_seconds: 45 };
    store.apply(next(v1, { origins: v1.origins.with(0, slower) }));
    const after = store.get(tenantId)!;
    after.routes.forEach((route, index) => {
      const earlier = before.routes[index]!;
      expect(route.origin?.config).toBe(slower);
      expect(route.metrics).toBe(earlier.metrics);
      expect(route.stages.all.map((stage) => stage.name)).toEqual(
        earlier.stages.all.map((stage) => stage.name),
      );
      route.stages.all.forEach((stage, at) => {
        // What reads the origins (the retry budget's tracking, the split's compiled origins) is new.
        if (stage.name === 'upstream_policy' || stage.name === 'traffic_split') {
          expect(stage).not.toBe(earlier.stages.all[at]);
        } else expect(stage).toBe(earlier.stages.all[at]);
      });
    });
    expect(after.router.match('GET', '/r3/x')?.origin?.config).toBe(slower);
  });

  it('drops a removed route (not matched, its series retired) and keeps the series of those that stay', () => {
    const { store, compiled, retired } = harness();
    const retire = vi.spyOn(RouteMetrics.prototype, 'retire');
    const v1 = largeTenant(3);
    store.apply(v1);
    const before = store.get(tenantId)!;
    compiled.length = 0;

    store.apply(next(v1, { routes: [v1.routes[0]!, v1.routes[2]!] }));

    expect(compiled).toHaveLength(0);
    const after = store.get(tenantId)!;
    expect(after.router.match('GET', '/r1/x')).toBeUndefined();
    expect(after.router.match('GET', '/r2/x')).toBe(before.routes[2]);
    expect(retire.mock.instances).toEqual([before.routes[1]!.metrics]);
    expect(retired.at(-1)).toEqual({ previous: before, replacement: after });
  });

  it('releases everything of a removed tenant (tombstone), reused routes included', () => {
    const { store, upstreams, retired } = harness();
    const retire = vi.spyOn(RouteMetrics.prototype, 'retire');
    const v1 = largeTenant(4);
    store.apply(v1);
    store.apply(next(v1));
    const last = store.get(tenantId)!;

    expect(store.remove(tenantId)).toBe(true);
    expect(store.resolveHost('large.localhost')).toBeUndefined();
    expect(retired.at(-1)).toEqual({ previous: last, replacement: undefined });
    // Its routes' series and those of its requests no route took.
    expect(new Set(retire.mock.instances)).toEqual(
      new Set([...last.routes.map((route) => route.metrics), last.unroutedMetrics]),
    );
    expect(upstreams.every((entry) => entry.closed)).toBe(true);
  });

  it('compiles again a route whose compilation warned (its warning is logged with every version)', () => {
    const warnings: string[] = [];
    const store = new GatewayConfigStore({
      baseDomains: ['localhost'],
      createUpstreamSet: () => ({ acquire: () => undefined, close: async () => {} }),
      onWarning: (warning) => warnings.push(warning.message),
    });
    const v1 = buildSnapshot({
      tenantId,
      version: 1,
      subdomain: 'large',
      origins: [],
      routes: [{ origin_id: randomUUID(), path_pattern: '/gone/*' }],
    });
    store.apply(v1);
    store.apply(next(v1));
    expect(warnings.filter((warning) => warning.includes('names unknown origin'))).toHaveLength(2);
  });
});
