import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import {
  type ClerkTestKeys,
  createClerkTestKeys,
  signClerkToken,
} from '@vantageedge/shared/testing/clerk-tokens';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regression: who a route admits was keyed by the route's authentication settings only, not by the IP
 * rules it applies (its own, else the tenant-wide settings.ip_rules) nor by the tenant's Clerk
 * organization. An answer stored while only the office's addresses were let in was served to every
 * client once the allow list was dropped (the origin checking addresses itself from then on), and an
 * answer stored for one organization's members to another's once the tenant moved to it.
 */

const INTERNAL = '127.0.0.1';
const OUTSIDER = '127.0.0.2';

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const path = new URL(req.url ?? '/', 'http://origin').pathname;
  if (path.startsWith('/reports/')) {
    // Checks the client address itself (the gateway's X-Real-IP): the figures are for the office only.
    const internal = req.headers['x-real-ip'] === INTERNAL;
    res.writeHead(internal ? 200 : 403, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
    res.end(internal ? 'internal figures' : 'not for you');
    return;
  }
  if (path.startsWith('/handbook/')) {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60' });
    res.end(`handbook of ${req.headers['x-vantageedge-org-id'] ?? 'nobody'}`);
    return;
  }
  res.writeHead(404);
  res.end();
}

describe('an entry stored while the route admitted fewer callers (tenant-wide settings, IP rules)', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  let cache: ResponseCache;
  let redis: TestRedis;
  let clerk: ClerkTestKeys;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    redis = createTestRedis('admission-change');
    cache = createResponseCache({
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      l1MaxBytes: 1_000_000,
      registry: createMetricsRegistry('admission-change', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    clerk = await createClerkTestKeys();
    gateway = await startTestGateway(
      { CLERK_JWT_KEY: clerk.publicKeyPem },
      { stages: [createCacheStage(cache)] },
    );
  });
  afterAll(async () => {
    await gateway.close();
    await cache.close();
    await origin.close();
    await redis.cleanup();
  });

  /** A tenant whose versions keep their ids: `apply(version, changes)` applies one of them. */
  function tenant(route: Omit<TestRoute, 'origin_id'>) {
    const tenantId = randomUUID();
    const originId = randomUUID();
    const routeId = randomUUID();
    const subdomain = `admission${tenantId.slice(0, 8)}`;
    return {
      host: `${subdomain}.localhost`,
      async apply(
        version: number,
        changes: { settings?: Record<string, unknown>; clerkOrgId?: string; route?: Partial<TestRoute> },
      ) {
        const snapshot = buildSnapshot({
          tenantId,
          version,
          subdomain,
          ...(changes.clerkOrgId === undefined ? {} : { clerkOrgId: changes.clerkOrgId }),
          origins: [{ id: originId, targets: [origin.url] }],
          routes: [
            {
              id: routeId,
              origin_id: originId,
              cache_policy: cachePolicy.parse({ ttl_seconds: 60, shared: true }),
              ...route,
              ...changes.route,
            },
          ],
          ...(changes.settings === undefined ? {} : { settings: changes.settings }),
        });
        gateway.store.apply(snapshot);
        await cache.prepareTenant(tenantId);
      },
    };
  }

  it('is not served to an address the tenant-wide IP rules let in only after it was stored', async () => {
    const acme = tenant({ path_pattern: '/reports/*' });
    await acme.apply(1, { settings: { ip_rules: { allow: [`${INTERNAL}/32`] } } });
    const path = `/reports/${randomUUID()}`;
    const refused = await send(gateway, acme.host, path, { localAddress: OUTSIDER });
    expect(refused.status).toBe(403);
    expect(refused.json()).toMatchObject({ error: { code: 'ip_denied' } });
    expect((await send(gateway, acme.host, path, { localAddress: INTERNAL })).text).toBe('internal figures');
    expect((await send(gateway, acme.host, path, { localAddress: INTERNAL })).headers['x-cache']).toBe('HIT');

    // The allow list is dropped: the origin checks addresses itself from now on.
    await acme.apply(2, { settings: {} });
    const outsider = await send(gateway, acme.host, path, { localAddress: OUTSIDER });
    expect(outsider.text).toBe('not for you');
    expect(outsider.status).toBe(403);
  });

  it("is not served to an address the route's own IP rules let in only after it was stored", async () => {
    const acme = tenant({ path_pattern: '/reports/*' });
    await acme.apply(1, { route: { ip_rules: { allow: [`${INTERNAL}/32`], deny: [] } } });
    const path = `/reports/${randomUUID()}`;
    expect((await send(gateway, acme.host, path, { localAddress: INTERNAL })).text).toBe('internal figures');

    await acme.apply(2, { route: { ip_rules: null } });
    const outsider = await send(gateway, acme.host, path, { localAddress: OUTSIDER });
    expect(outsider.text).toBe('not for you');
  });

  it("is not served to another organization's members once the tenant moved to it", async () => {
    const acme = tenant({ path_pattern: '/handbook/*', auth_mode: 'jwt_required' });
    const path = `/handbook/${randomUUID()}`;
    const member = async (userId: string, orgId: string) => {
      const token = await signClerkToken(clerk, { userId, orgId });
      return send(gateway, acme.host, path, { headers: { authorization: `Bearer ${token}` } });
    };
    await acme.apply(1, { clerkOrgId: 'org_before' });
    expect((await member('user_before', 'org_before')).text).toBe('handbook of org_before');
    expect((await member('user_before_2', 'org_before')).headers['x-cache']).toBe('HIT');

    await acme.apply(2, { clerkOrgId: 'org_after' });
    const newcomer = await member('user_after', 'org_after');
    expect(newcomer.status).toBe(200);
    expect(newcomer.text).toBe('handbook of org_after');
  });

  it('is still served after a tenant-wide change that lets nobody new in (more ranges denied, a rate limit)', async () => {
    const acme = tenant({ path_pattern: '/reports/*' });
    const blocked = ['192.0.2.0/24'];
    await acme.apply(1, { settings: { ip_rules: { deny: blocked } } });
    const path = `/reports/${randomUUID()}`;
    expect((await send(gateway, acme.host, path, { localAddress: INTERNAL })).headers['x-cache']).toBe(
      'MISS',
    );
    await acme.apply(2, {
      settings: {
        ip_rules: { deny: [...blocked, '198.51.100.0/24'] },
        rate_limit: { requests_per_second: 1000, burst: 1000 },
      },
    });
    const again = await send(gateway, acme.host, path, { localAddress: INTERNAL });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.text).toBe('internal figures');
  });
});
