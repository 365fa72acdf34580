import { randomUUID } from 'node:crypto';
import type { OriginConfig, TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import { EventLoopSlices } from '@vantageedge/shared/process/event-loop-slices';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from '../observability/gateway-metrics.js';
import type { RouteCompileContext, RoutePolicy } from '../pipeline/stage.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { UpstreamSet } from '../upstream/types.js';
import type { CompiledTenant } from './compiled-tenant.js';
import { GatewayConfigStore } from './gateway-config-store.js';

/**
 * A tenant applied in slices of the event loop (applyInSlices, as the config plane applies every
 * snapshot): other work runs between its routes, it serves its previous version until the new one is
 * complete, a version superseded meanwhile is never served, and the result is what `apply` makes.
 */
function harness() {
  const upstreams: Array<{ origin: OriginConfig; closed: boolean }> = [];
  const store = new GatewayConfigStore({
    baseDomains: ['localhost'],
    createUpstreamSet: (origin) => {
      const entry = { origin, closed: false };
      upstreams.push(entry);
      return {
        acquire: () => undefined,
        close: async () => {
          entry.closed = true;
        },
      } satisfies UpstreamSet;
    },
  });
  const compiled: RouteCompileContext[] = [];
  store.setPipeline({
    policies: [countingPolicy('counting', compiled)],
    metrics: new GatewayMetrics(new Registry()),
  });
  return { store, upstreams, compiled };
}

function countingPolicy(name: string, compiled: RouteCompileContext[]): RoutePolicy {
  return {
    name,
    compileRoute(context) {
      compiled.push(context);
      return { name, onRequest: () => 'continue' };
    },
  };
}

const tenantId = '00000000-0000-4000-8000-0000000000bb';
const sharedOrigin = { id: randomUUID(), targets: ['http://10.0.0.1:80'] };

/** 40 routes; from version 2 on each version has an origin of its own, and route 0 changes. */
function largeTenant(version: number): TenantSnapshot {
  const own = {
    id: `00000000-0000-4000-8000-${String(version).padStart(12, '0')}`,
    targets: ['http://10.0.0.2:80'],
  };
  return buildSnapshot({
    tenantId,
    version,
    subdomain: 'large',
    origins: version === 1 ? [sharedOrigin] : [sharedOrigin, own],
    routes: Array.from({ length: 40 }, (_, index) => ({
      id: `00000000-0000-4000-9000-${String(index).padStart(12, '0')}`,
      origin_id: index === 0 && version > 1 ? own.id : sharedOrigin.id,
      path_pattern: index === 0 ? `/v${version}/*` : `/r${index}/*`,
      strip_prefix: index === 0 ? `/v${version}` : null,
    })),
  });
}

const smallTenantId = '00000000-0000-4000-8000-0000000000cc';
const smallTenant = (version: number) =>
  buildSnapshot({
    tenantId: smallTenantId,
    version,
    subdomain: 'small',
    origins: [sharedOrigin],
    routes: [],
  });

/** A turn after every route (budget 0): what other work sees does not depend on the machine's speed. */
const everyStep = () => new EventLoopSlices({ budgetMs: 0 });

/** Runs `onTurn` once a turn of the event loop until `until` settles; returns how many turns ran. */
async function turnsWhile(until: Promise<unknown>, onTurn: (turn: number) => void): Promise<number> {
  let settled = false;
  let turns = 0;
  const ticking = new Promise<void>((resolve) => {
    const tick = () => {
      if (settled) return resolve();
      onTurn(turns++);
      setImmediate(tick);
    };
    setImmediate(tick);
  });
  await until.finally(() => {
    settled = true;
  });
  await ticking;
  return turns;
}

const servedVersion = (store: GatewayConfigStore) => store.resolveHost('large.localhost')?.version;

describe('GatewayConfigStore.applyInSlices', () => {
  it('lets other tenants be served and changed between its routes, and serves the previous version until the new one is complete', async () => {
    const { store } = harness();
    store.apply(largeTenant(1));
    const small = smallTenant(1);
    store.apply(small);

    const applying = store.applyInSlices(largeTenant(2), everyStep());
    const seen: Array<{ large: bigint | undefined; small: string | undefined }> = [];
    const turns = await turnsWhile(applying, (turn) => {
      // Another tenant's new version is applied meanwhile, and serves at once.
      if (turn === 2) store.apply(smallTenant(2));
      seen.push({ large: servedVersion(store), small: store.resolveHost('small.localhost')?.id });
    });

    expect(await applying).toBe(true);
    expect(turns).toBeGreaterThan(10);
    expect(seen.every((served) => served.large === 1n && served.small === small.tenant_id)).toBe(true);
    expect(store.get(small.tenant_id)?.version).toBe(2n);
    expect(servedVersion(store)).toBe(2n);
  });

  it('lets other tenants be served while it compiles the route matcher of a version changing one route', async () => {
    const { store } = harness();
    // Patterns of 200 segments, half of the routes behind an API key (the matcher also indexes them
    // with letters folded): a replica's costliest matcher per route within the pattern length limit.
    const first = buildSnapshot({
      tenantId,
      version: 1,
      subdomain: 'large',
      origins: [sharedOrigin],
      routes: Array.from({ length: 100 }, (_, index) => ({
        origin_id: sharedOrigin.id,
        path_pattern: `${'/A'.repeat(200)}/r${index}`,
        auth_mode: index % 2 === 0 ? 'public' : 'apikey_required',
      })),
    });
    store.apply(first);
    store.apply(smallTenant(1));

    // One route changed (as the decoder hands them over, the others are the same objects): one route
    // compiled, and the matcher of all of them.
    const changed = { ...first.routes[0]!, path_pattern: '/changed' };
    const next = { ...first, version: '2', routes: [changed, ...first.routes.slice(1)] };
    const applying = store.applyInSlices(next, everyStep());
    const seen: Array<{ large: bigint | undefined; small: string | undefined }> = [];
    const turns = await turnsWhile(applying, () => {
      seen.push({ large: servedVersion(store), small: store.resolveHost('small.localhost')?.id });
    });

    expect(await applying).toBe(true);
    expect(turns).toBeGreaterThan(first.routes.length);
    expect(seen.every((served) => served.large === 1n && served.small === smallTenantId)).toBe(true);
    expect(servedVersion(store)).toBe(2n);
    const router = store.get(tenantId)?.router;
    expect(router?.match('GET', `${'/A'.repeat(200)}/r7`)?.config.id).toBe(first.routes[7]!.id);
    expect(router?.match('GET', '/changed')?.config.id).toBe(changed.id);
    expect(router?.match('GET', `${'/A'.repeat(200)}/r0`)).toBeUndefined();
  });

  it('keeps the matcher of a version that keeps every route and the IP rules', async () => {
    const { store } = harness();
    const first = largeTenant(1);
    store.apply(first);
    const matcherOf = () => store.get(tenantId)?.router;
    const before = matcherOf();

    expect(await store.applyInSlices({ ...first, version: '2' }, everyStep())).toBe(true);
    expect(matcherOf()).toBe(before);

    const ipRules = { allow: ['10.0.0.0/8'], deny: [] };
    const withRules = {
      ...first,
      version: '3',
      tenant: { ...first.tenant, settings: { ...first.tenant.settings, ip_rules: ipRules } },
    };
    expect(await store.applyInSlices(withRules, everyStep())).toBe(true);
    expect(matcherOf()).not.toBe(before);
    expect(matcherOf()?.match('GET', '/r7/x')?.config.id).toBe(first.routes[7]!.id);
  });

  it('compiles what apply compiles, keeping the unchanged routes of the previous version', async () => {
    const sliced = harness();
    const direct = harness();
    const first = largeTenant(1);
    for (const { store } of [sliced, direct]) store.apply(first);
    sliced.compiled.length = 0;
    direct.compiled.length = 0;
    // As the snapshot decoder hands them over: an unchanged route is the previous version's object.
    const next = largeTenant(2);
    next.routes = next.routes.map((route, index) => (index === 0 ? route : first.routes[index]!));

    expect(await sliced.store.applyInSlices(next, everyStep())).toBe(true);
    expect(direct.store.apply(next)).toBe(true);

    const shape = (tenant: CompiledTenant | undefined) => ({
      version: tenant?.version,
      hostNames: tenant?.hostNames,
      origins: [...(tenant?.origins.keys() ?? [])],
      routes: tenant?.routes.map((route) => ({
        config: route.config,
        origin: route.origin?.config.id,
        stripPrefix: route.stripPrefix,
        stages: route.stages.all.map((stage) => stage.name),
      })),
      matched: ['/v2/x', '/r7/y', '/v1/x'].map((path) => tenant?.router.match('GET', path)?.config.id),
    });
    expect(shape(sliced.store.get(tenantId))).toEqual(shape(direct.store.get(tenantId)));
    // Only route 0 changed: one route compiled again, as by apply.
    expect(sliced.compiled.map((context) => context.route.id)).toEqual(
      direct.compiled.map((context) => context.route.id),
    );
    expect(sliced.compiled).toHaveLength(1);
  });

  it('gives up a version superseded meanwhile (never served, its upstream sets closed)', async () => {
    const { store, upstreams } = harness();
    store.apply(largeTenant(1));

    const superseded = store.applyInSlices(largeTenant(2), everyStep());
    const seen = new Set<bigint | undefined>();
    await turnsWhile(superseded, (turn) => {
      if (turn === 3) store.apply(largeTenant(3));
      seen.add(servedVersion(store));
    });

    expect(await superseded).toBe(false);
    expect(seen.has(2n)).toBe(false);
    expect(servedVersion(store)).toBe(3n);
    const ownOrigin = (version: number) =>
      upstreams.find((entry) => entry.origin.id === largeTenant(version).origins[1]!.id);
    expect(ownOrigin(2)?.closed).toBe(true);
    expect(ownOrigin(3)?.closed).toBe(false);
  });

  it('gives up an older version when a newer one is applied in slices too', async () => {
    const { store } = harness();
    store.apply(largeTenant(1));

    const older = store.applyInSlices(largeTenant(2), everyStep());
    const newer = store.applyInSlices(largeTenant(4), everyStep());
    const evenOlder = store.applyInSlices(largeTenant(3), everyStep());
    const seen = new Set<bigint | undefined>();
    await turnsWhile(Promise.all([older, newer, evenOlder]), () => seen.add(servedVersion(store)));

    expect(await Promise.all([older, newer, evenOlder])).toEqual([false, true, false]);
    expect([...seen].filter((version) => version === 2n || version === 3n)).toEqual([]);
    expect(servedVersion(store)).toBe(4n);
  });

  it('does not bring back a tenant removed meanwhile', async () => {
    const { store } = harness();
    store.apply(largeTenant(1));

    const applying = store.applyInSlices(largeTenant(2), everyStep());
    await turnsWhile(applying, (turn) => {
      if (turn === 3) store.remove(tenantId);
    });

    expect(await applying).toBe(false);
    expect(store.get(tenantId)).toBeUndefined();
    expect(servedVersion(store)).toBeUndefined();
  });

  it('compiles with the pipeline set meanwhile', async () => {
    const { store } = harness();
    store.apply(largeTenant(1));

    const applying = store.applyInSlices(largeTenant(2), everyStep());
    const later: RouteCompileContext[] = [];
    await turnsWhile(applying, (turn) => {
      if (turn === 3) store.setPipeline({ policies: [countingPolicy('later', later)] });
    });

    expect(await applying).toBe(true);
    const served = store.get(tenantId);
    expect(served?.version).toBe(2n);
    expect(served?.routes.every((route) => route.stages.all.some((stage) => stage.name === 'later'))).toBe(
      true,
    );
  });
});
