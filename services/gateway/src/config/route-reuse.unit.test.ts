import { randomUUID } from 'node:crypto';
import type { OriginConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GatewayMetrics, RouteMetrics } from '../observability/gateway-metrics.js';
import type { RouteCompileContext, RoutePolicy } from '../pipeline/stage.js';
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
    expect(new Set(retire.mock.instances)).toEqual(new Set(last.routes.map((route) => route.metrics)));
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
