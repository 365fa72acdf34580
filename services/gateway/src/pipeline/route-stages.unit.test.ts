import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { describe, expect, it } from 'vitest';
import { Authenticator } from '../auth/authenticator.js';
import { createCacheStage } from '../cache/cache-stage.js';
import type { ResponseCache } from '../cache/response-cache.js';
import { GatewayConfigStore } from '../config/gateway-config-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import type { RateLimiter } from '../ratelimit/rate-limiter.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createAuthPolicy } from './auth-stage.js';
import { GatewayExchange } from './exchange.js';
import type { RoutePolicy } from './stage.js';

const PEPPER = 'unit-pepper-0123456789abcdef0123456789abcdef';
const KEY = 've_live_unitkey000000000000000000000000000';
const noUpstreams = () => ({ acquire: () => undefined, close: async () => {} });
const unusedLimiter = { storeDegraded: false } as unknown as RateLimiter;
const unusedCache = {
  prepareTenant: async () => {},
  tenantBoundChanged: async () => {},
} as unknown as ResponseCache;

function snapshot(version = 1) {
  const originId = randomUUID();
  return buildSnapshot({
    tenantId: '00000000-0000-4000-8000-00000000000a',
    version,
    subdomain: 'acme',
    origins: [{ id: originId, targets: ['http://127.0.0.1:1'] }],
    routes: [
      { origin_id: originId, path_pattern: '/public/*' },
      { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
      {
        origin_id: originId,
        path_pattern: '/limited/*',
        auth_mode: 'apikey_required',
        ...({ rate_limit: { requests_per_second: 10, scope: 'route' } } as object),
      },
      {
        origin_id: originId,
        path_pattern: '/cached/*',
        ...({ cache_policy: { ttl_seconds: 60 } } as object),
      },
    ],
    apiKeys: [{ key_hash: hashApiKey(PEPPER, KEY) }],
  });
}

function storeWith(policies: readonly RoutePolicy[]) {
  const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
  store.setPipeline({ policies });
  return store;
}

describe('route stages compiled from the route policies', () => {
  const auth = createAuthPolicy(new Authenticator({ apiKeyPepper: PEPPER }));

  it('gives a public route without features no stage at all, and an API-key route only auth', () => {
    const store = storeWith([auth, createRateLimitStage(unusedLimiter), createCacheStage(unusedCache)]);
    store.apply(snapshot());
    const tenant = store.resolveHost('acme.localhost')!;
    expect(tenant.router.match('GET', '/public/x')!.stages.all).toEqual([]);
    expect(tenant.router.match('GET', '/keyed/x')!.stages.all.map((s) => s.name)).toEqual(['auth']);
  });

  it('answers an API key synchronously: no promise on a route whose stages are all synchronous', () => {
    const store = storeWith([auth]);
    store.apply(snapshot());
    const tenant = store.resolveHost('acme.localhost')!;
    const route = tenant.router.match('GET', '/keyed/x')!;
    const exchange = new GatewayExchange(
      { method: 'GET', url: '/keyed/x', headers: { 'x-api-key': KEY } } as unknown as IncomingMessage,
      {} as ServerResponse,
      'r1',
      '127.0.0.1',
    );
    exchange.tenant = tenant;
    exchange.route = route;
    const result = route.stages.request[0]!.onRequest!(exchange);
    expect(result).toBe('continue');
    expect(exchange.identity.kind).toBe('api_key');
  });

  it('compiles the features each route uses, in policy order, with the response hooks reversed', () => {
    const recording = (name: string, uses: (pattern: string) => boolean): RoutePolicy => ({
      name,
      compileRoute: ({ route }) =>
        uses(route.path_pattern) ? { name, onRequest: () => 'continue', onResponse: () => undefined } : null,
    });
    const store = storeWith([
      recording('first', () => true),
      recording('second', (p) => p !== '/public/*'),
      recording('third', (p) => p === '/cached/*'),
    ]);
    store.apply(snapshot());
    const tenant = store.resolveHost('acme.localhost')!;
    const cached = tenant.router.match('GET', '/cached/x')!;
    expect(cached.stages.request.map((s) => s.name)).toEqual(['first', 'second', 'third']);
    expect(cached.stages.response.map((s) => s.name)).toEqual(['third', 'second', 'first']);
    expect(tenant.router.match('GET', '/public/x')!.stages.all.map((s) => s.name)).toEqual(['first']);
  });

  it("sets a route's IP rules apart from the stages that run after them, once, when the route compiles", () => {
    const recording = (name: string): RoutePolicy => ({
      name,
      compileRoute: ({ route }) =>
        route.path_pattern === '/public/*' ? null : { name, onRequest: () => 'continue' },
    });
    const store = storeWith([recording('ip_rules'), recording('cors'), auth]);
    store.apply(snapshot());
    const tenant = store.resolveHost('acme.localhost')!;
    const keyed = tenant.router.match('GET', '/keyed/x')!.stages;
    expect(keyed.clientAddress?.name).toBe('ip_rules');
    expect(keyed.afterClientAddress.map((s) => s.name)).toEqual(['cors', 'auth']);
    expect(keyed.request.map((s) => s.name)).toEqual(['ip_rules', 'cors', 'auth']);
    const withoutRules = storeWith([recording('cors'), auth]);
    withoutRules.apply(snapshot());
    const stages = withoutRules.resolveHost('acme.localhost')!.router.match('GET', '/keyed/x')!.stages;
    expect(stages.clientAddress).toBeUndefined();
    expect(stages.afterClientAddress).toBe(stages.request);
    expect(tenant.router.match('GET', '/public/x')!.stages.clientAddress).toBeUndefined();
  });

  it('compiles tenants applied before the pipeline was set once it is, and tells policies about each version', () => {
    const applied: bigint[] = [];
    const retired: bigint[] = [];
    const store = new GatewayConfigStore({ baseDomains: ['localhost'], createUpstreamSet: noUpstreams });
    store.apply(snapshot(1));
    expect(store.resolveHost('acme.localhost')!.router.match('GET', '/keyed/x')!.stages.all).toEqual([]);
    store.setPipeline({
      policies: [
        auth,
        {
          name: 'watcher',
          compileRoute: () => null,
          tenantApplied: (tenant) => applied.push(tenant.version),
          tenantRetired: (tenant) => retired.push(tenant.version),
        },
      ],
    });
    const keyed = () => store.resolveHost('acme.localhost')!.router.match('GET', '/keyed/x')!;
    expect(keyed().stages.all.map((s) => s.name)).toEqual(['auth']);
    store.apply(snapshot(2));
    expect(keyed().stages.all.map((s) => s.name)).toEqual(['auth']);
    store.remove(snapshot().tenant_id);
    expect(applied).toEqual([1n, 2n]);
    expect(retired).toEqual([1n, 1n, 2n]);
  });

  it('gives routes with a limit a rate-limit stage and routes with an enabled cache policy a cache stage', () => {
    const store = storeWith([auth, createRateLimitStage(unusedLimiter), createCacheStage(unusedCache)]);
    store.apply(snapshot());
    const tenant = store.resolveHost('acme.localhost')!;
    expect(tenant.router.match('GET', '/limited/x')!.stages.all.map((s) => s.name)).toEqual([
      'auth',
      'rate_limit',
    ]);
    expect(tenant.router.match('GET', '/cached/x')!.stages.all.map((s) => s.name)).toEqual(['cache']);
  });
});
