import { randomUUID } from 'node:crypto';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * Regression from a review with hostile clients: a traffic split's override (a header or cookie value
 * any client can send) picks the origin after the cache stage, and the key does not carry it. One
 * client sending `x-canary: always` filled the route's shared entry with the canary's answer, served
 * to every other client for the TTL.
 */
describe('the response cache on a route with traffic split overrides', () => {
  let gateway: TestGateway;
  let stable: TestOrigin;
  let canary: TestOrigin;

  beforeAll(async () => {
    stable = await startTestOrigin('stable');
    canary = await startTestOrigin('canary');
    const cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
      l1MaxBytes: 1_000_000,
      registry: createMetricsRegistry('traffic-split-key', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
    const stableId = randomUUID();
    const canaryId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'splitkey',
      origins: [
        { id: stableId, targets: [stable.url] },
        { id: canaryId, targets: [canary.url] },
      ],
      routes: [
        {
          origin_id: stableId,
          path_pattern: '/*',
          traffic_split: {
            origins: [
              { origin_id: stableId, weight: 100 },
              { origin_id: canaryId, weight: 0 },
            ],
            overrides: [
              { header: 'x-canary', value: 'always', origin_id: canaryId },
              { cookie: 'canary', value: 'yes', origin_id: canaryId },
            ],
          },
        },
      ],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({ mode: 'override', ttl_seconds: 3600 });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await stable?.close();
    await canary?.close();
  });

  const originOf = (answer: { json: () => Record<string, unknown> }) => answer.json()['origin'];

  it('regression: a client choosing the canary by header or cookie never fills the entry everyone gets', async () => {
    const chosen = [{ 'x-canary': 'always' }, { cookie: 'theme=dark; canary=yes' }];
    for (const [i, headers] of chosen.entries()) {
      const forced = await send(gateway, 'splitkey.localhost', `/page/${i}`, { headers });
      expect(originOf(forced)).toBe('canary');
      const victim = await send(gateway, 'splitkey.localhost', `/page/${i}`);
      expect(originOf(victim)).toBe('stable');
      // The others' answer is still cached, and a chosen request is not served it either.
      expect((await send(gateway, 'splitkey.localhost', `/page/${i}`)).headers['x-cache']).toBe('HIT');
      expect(originOf(await send(gateway, 'splitkey.localhost', `/page/${i}`, { headers }))).toBe('canary');
    }
  });
});

/**
 * A sticky split lets the client pick the origin too: the value it sends in the sticky header or cookie
 * is hashed to an origin, and a client can try values (on any route of the split) until one lands on
 * the canary. On a cached route such a request neither fills the entry everyone gets nor is served
 * another origin's entry; requests without the key are cached as before.
 */
describe('the response cache on a route with a sticky traffic split', () => {
  let gateway: TestGateway;
  let stable: TestOrigin;
  let canary: TestOrigin;
  const host = 'splitsticky.localhost';

  beforeAll(async () => {
    stable = await startTestOrigin('stable');
    canary = await startTestOrigin('canary');
    const cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
      l1MaxBytes: 1_000_000,
      registry: createMetricsRegistry('traffic-split-sticky-key', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
    const stableId = randomUUID();
    const canaryId = randomUUID();
    const split = (sticky: Record<string, string>) => ({
      origins: [
        { origin_id: stableId, weight: 90 },
        { origin_id: canaryId, weight: 10 },
      ],
      sticky,
    });
    const snapshot = buildSnapshot({
      subdomain: 'splitsticky',
      origins: [
        { id: stableId, targets: [stable.url] },
        { id: canaryId, targets: [canary.url] },
      ],
      routes: [
        { origin_id: stableId, path_pattern: '/probe/*', traffic_split: split({ cookie: 'session' }) },
        { origin_id: stableId, path_pattern: '/by-cookie/*', traffic_split: split({ cookie: 'session' }) },
        { origin_id: stableId, path_pattern: '/by-header/*', traffic_split: split({ header: 'x-user' }) },
      ],
    });
    for (const route of snapshot.routes.slice(1)) {
      route.cache_policy = cachePolicy.parse({ mode: 'override', ttl_seconds: 3600 });
    }
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await stable?.close();
    await canary?.close();
  });

  const originOf = (answer: { json: () => Record<string, unknown> }) => answer.json()['origin'];

  /** What a hostile client does: tries session values on an uncached route until one lands on `wanted`. */
  async function sessionLandingOn(wanted: string): Promise<string> {
    for (let i = 0; i < 500; i++) {
      const session = `probe-${i}`;
      const answer = await send(gateway, host, '/probe/x', { headers: { cookie: `session=${session}` } });
      if (originOf(answer) === wanted) return session;
    }
    throw new Error(`no session value lands on ${wanted}`);
  }

  it('regression: a client picking the canary through the sticky key never fills the entry everyone gets', async () => {
    const onCanary = await sessionLandingOn('canary');
    const onStable = await sessionLandingOn('stable');
    const chosen = [
      { path: '/by-cookie/page', headers: { cookie: `theme=dark; session=${onCanary}` } },
      { path: '/by-header/page', headers: { 'x-user': onCanary } },
    ];
    const stableClients = [{ cookie: `session=${onStable}` }, { 'x-user': onStable }];
    for (const [i, { path, headers }] of chosen.entries()) {
      expect(originOf(await send(gateway, host, path, { headers }))).toBe('canary');
      // A client without the key, and one whose key lands on the stable origin, get the stable answer.
      const victim = await send(gateway, host, path);
      expect(originOf(victim)).toBe('stable');
      expect(originOf(await send(gateway, host, path, { headers: stableClients[i]! }))).toBe('stable');
      // The keyless clients' answer is cached; the canary's client is still not served it.
      expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
      expect(originOf(await send(gateway, host, path, { headers }))).toBe('canary');
    }
  });
});
