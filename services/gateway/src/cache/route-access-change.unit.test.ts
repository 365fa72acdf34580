import { randomUUID } from 'node:crypto';
import { cachePolicy, type RouteConfig, routeConfig } from '@vantageedge/shared/domain/gateway-config';
import {
  type CacheTenant,
  type CompiledCachePolicy,
  compileCachePolicy,
} from '@vantageedge/shared/gateway-policies/compile-cache-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regression: the key held nothing of who may call the route. An answer a shared authenticated route
 * stored for its signed-in callers was served to anonymous clients once the route was made public (its
 * origin checking the callers itself from then on), and one stored for callers with a scope to those
 * without it once the scope was no longer required, until the entry expired.
 */
const tenantId = randomUUID();
const routeId = randomUUID();
const caches: ResponseCache[] = [];
afterEach(async () => {
  for (const cache of caches.splice(0)) await cache.close();
});

async function responseCache(): Promise<ResponseCache> {
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('route-access-change', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  caches.push(cache);
  await cache.prepareTenant(tenantId);
  return cache;
}

/** The route as one snapshot or a later one compiles it: same tenant, same id, its access as given. */
function policyOf(access: Partial<RouteConfig>, tenant?: CacheTenant): CompiledCachePolicy {
  const route = routeConfig.parse({
    id: routeId,
    origin_id: randomUUID(),
    path_pattern: '/*',
    auth_mode: 'jwt_required',
    cache_policy: cachePolicy.parse({ shared: true, ttl_seconds: 600 }),
    ...access,
  });
  return compileCachePolicy(tenantId, route, tenant)!;
}

/** A GET of /report by `userId` (anonymous when undefined): its outcome; a MISS is filled with `body`. */
async function get(
  cache: ResponseCache,
  policy: CompiledCachePolicy,
  userId: string | undefined,
  body: string,
): Promise<string> {
  const lookup = await cache.lookup(
    policy,
    { method: 'GET', scheme: 'https', host: 'acme.example', path: '/report', query: '', headers: {} },
    { userId },
  );
  if (lookup.outcome === 'MISS' && lookup.fill) {
    const start = cache.beginFill(lookup.fill, 'GET', 200, { 'cache-control': 'max-age=600' });
    if (start.outcome === 'collect') {
      start.body.push(Buffer.from(body));
      await start.body.end();
    }
  }
  return lookup.outcome;
}

describe('an entry stored while the route admitted fewer callers', () => {
  it('is not served to anonymous clients once the shared authenticated route is made public', async () => {
    const cache = await responseCache();
    const members = policyOf({ auth_mode: 'jwt_required' });
    expect(await get(cache, members, 'clerk:user_a', 'members only')).toBe('MISS');
    expect(await get(cache, members, 'clerk:user_b', 'members only')).toBe('HIT');

    const open = policyOf({ auth_mode: 'public' });
    expect(await get(cache, open, undefined, 'please sign in')).toBe('MISS');
    expect(await get(cache, open, undefined, 'please sign in')).toBe('HIT');
  });

  it('is not served to callers without a scope once the route no longer requires it', async () => {
    const cache = await responseCache();
    const admins = policyOf({ required_scopes: ['reports:read'] });
    expect(await get(cache, admins, 'clerk:admin', 'the report')).toBe('MISS');

    expect(await get(cache, policyOf({ required_scopes: [] }), 'clerk:user', 'forbidden')).toBe('MISS');
    // Requiring the scope again: the entry filled for the scope's holders is theirs again.
    expect(await get(cache, policyOf({ required_scopes: ['reports:read'] }), 'clerk:admin', '')).toBe('HIT');
  });

  it('is not served once the route admits every signed-in user rather than the tenant’s own', async () => {
    const cache = await responseCache();
    expect(await get(cache, policyOf({}), 'clerk:member', 'internal')).toBe('MISS');
    const anyone = policyOf({ allow_any_authenticated_user: true });
    expect(await get(cache, anyone, 'clerk:stranger', 'outside view')).toBe('MISS');
  });

  it("is not served to an OIDC provider's users once the tenant accepts that provider", async () => {
    const cache = await responseCache();
    const clerkOnly: CacheTenant = { clerk_org_id: 'org_acme', settings: { ip_rules: null, oidc: null } };
    expect(await get(cache, policyOf({}, clerkOnly), 'clerk:member', 'internal')).toBe('MISS');
    const oidc = {
      issuer: 'https://partner-idp.example',
      audience: 'acme',
      jwks_url: 'https://idp.example/jwks',
    };
    const withPartners = { ...clerkOnly, settings: { ...clerkOnly.settings, oidc } };
    expect(await get(cache, policyOf({}, withPartners), 'oidc:partner:user', 'partner view')).toBe('MISS');
    // API keys are no user tokens: an API-key route's entries stay the tenant's callers'.
    const keyed = { auth_mode: 'apikey_required' } as const;
    expect(await get(cache, policyOf(keyed, clerkOnly), undefined, 'catalogue')).toBe('MISS');
    expect(await get(cache, policyOf(keyed, withPartners), undefined, '')).toBe('HIT');
  });

  it('is still served after a change that admits nobody new (the same access, another TTL)', async () => {
    const cache = await responseCache();
    expect(await get(cache, policyOf({}), 'clerk:user_a', 'members only')).toBe('MISS');
    const longer = policyOf({ cache_policy: cachePolicy.parse({ shared: true, ttl_seconds: 900 }) });
    expect(await get(cache, longer, 'clerk:user_b', '')).toBe('HIT');
  });
});
