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
import { buildSnapshot, type TestRoute } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

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
    ({ gateway, stable, canary } = await startStableAndCanary('traffic-split-key', 'splitkey', (ids) => [
      {
        origin_id: ids.stable,
        path_pattern: '/*',
        traffic_split: {
          origins: [
            { origin_id: ids.stable, weight: 100 },
            { origin_id: ids.canary, weight: 0 },
          ],
          overrides: [
            { header: 'x-canary', value: 'always', origin_id: ids.canary },
            { cookie: 'canary', value: 'yes', origin_id: ids.canary },
          ],
        },
      },
    ]));
  });

  afterAll(() => closeAll(gateway, stable, canary));

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
    const split = (ids: { stable: string; canary: string }, sticky: Record<string, string>) => ({
      origins: [
        { origin_id: ids.stable, weight: 90 },
        { origin_id: ids.canary, weight: 10 },
      ],
      sticky,
    });
    ({ gateway, stable, canary } = await startStableAndCanary(
      'traffic-split-sticky-key',
      'splitsticky',
      (ids) => [
        { origin_id: ids.stable, path_pattern: '/probe/*', traffic_split: split(ids, { cookie: 'session' }) },
        {
          origin_id: ids.stable,
          path_pattern: '/by-cookie/*',
          traffic_split: split(ids, { cookie: 'session' }),
        },
        {
          origin_id: ids.stable,
          path_pattern: '/by-header/*',
          traffic_split: split(ids, { header: 'x-user' }),
        },
      ],
      (path) => path !== '/probe/*',
    ));
  });

  afterAll(() => closeAll(gateway, stable, canary));

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

/**
 * Requests without an override or sticky key are split by weight, and each origin's answers are cached
 * apart: the split chooses before the cache looks up. Regression: the split chose after the lookup, so
 * the first answer stored (the canary's, on a miss the weights gave it) was served to every client for
 * the TTL, whichever origin the weights meant them for.
 */
describe('the response cache on a route with a weighted traffic split', () => {
  let gateway: TestGateway;
  let stable: TestOrigin;
  let canary: TestOrigin;
  const host = 'splitweights.localhost';

  beforeAll(async () => {
    ({ gateway, stable, canary } = await startStableAndCanary(
      'traffic-split-weights-key',
      'splitweights',
      (ids) => [
        {
          origin_id: ids.stable,
          path_pattern: '/*',
          traffic_split: {
            origins: [
              { origin_id: ids.stable, weight: 3 },
              { origin_id: ids.canary, weight: 1 },
            ],
          },
        },
      ],
    ));
  });

  afterAll(() => closeAll(gateway, stable, canary));

  it('regression: keeps the weights’ shares on a cached route, each origin’s answer in its own entry', async () => {
    const answers: string[] = [];
    for (let i = 0; i < 16; i++) {
      const answer = await send(gateway, host, '/page');
      answers.push(`${answer.json()['origin']} ${answer.headers['x-cache']}`);
    }
    expect(answers.filter((answer) => answer.startsWith('canary'))).toHaveLength(4);
    // Each origin was asked once; every later request is served its own origin's stored answer.
    expect(answers.filter((answer) => answer.endsWith('MISS'))).toEqual(['stable MISS', 'canary MISS']);
    expect(stable.seen).toHaveLength(1);
    expect(canary.seen).toHaveLength(1);
  });
});

/**
 * An origin of the split without an available target: its share is served by the other origin (the
 * fallback), whose answer is not stored as the unavailable origin's. Otherwise that answer would be
 * served to the origin's share for the TTL after it came back.
 */
describe('the response cache on a split route falling back to another origin', () => {
  let gateway: TestGateway;
  let stable: TestOrigin;
  const host = 'splitfallback.localhost';

  beforeAll(async () => {
    stable = await startTestOrigin('stable');
    let cache: ResponseCache;
    ({ gateway, cache } = await startCachingGateway('traffic-split-fallback-key'));
    const deadId = randomUUID();
    const stableId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'splitfallback',
      origins: [
        {
          id: deadId,
          targets: ['http://127.0.0.1:9'],
          health_check: { active: { enabled: false }, passive: { enabled: false } },
          circuit_breaker: { consecutive_failures: 1, open_seconds: 600 },
        },
        { id: stableId, targets: [stable.url] },
      ],
      routes: [
        { origin_id: deadId, path_pattern: '/open/*' },
        {
          origin_id: deadId,
          path_pattern: '/*',
          traffic_split: {
            origins: [
              { origin_id: deadId, weight: 1 },
              { origin_id: stableId, weight: 1 },
            ],
          },
        },
      ],
    });
    snapshot.routes[1]!.cache_policy = cachePolicy.parse({ mode: 'override', ttl_seconds: 3600 });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
    // One connect error opens the dead origin's only circuit: its share falls back from now on.
    expect((await send(gateway, host, '/open/x')).status).toBe(502);
  });

  afterAll(async () => {
    await gateway?.close();
    await stable?.close();
  });

  it('never stores the fallback origin’s answer under the unavailable origin’s key', async () => {
    const answers: string[] = [];
    for (let i = 0; i < 6; i++) {
      const answer = await send(gateway, host, '/page');
      answers.push(`${answer.status} ${answer.headers['x-cache']}`);
    }
    // The split alternates: the dead origin's turns fall back (never a HIT), the stable's are cached.
    expect(answers).toEqual(['200 MISS', '200 MISS', '200 MISS', '200 HIT', '200 MISS', '200 HIT']);
  });
});

/**
 * A caching test gateway serving `subdomain` from two origins, "stable" and "canary", on the routes
 * `routes` gives for their ids; the routes whose path `cached` accepts are cached for an hour.
 */
async function startStableAndCanary(
  name: string,
  subdomain: string,
  routes: (ids: { stable: string; canary: string }) => TestRoute[],
  cached: (path: string) => boolean = () => true,
): Promise<{ gateway: TestGateway; stable: TestOrigin; canary: TestOrigin }> {
  const stable = await startTestOrigin('stable');
  const canary = await startTestOrigin('canary');
  const { gateway, cache } = await startCachingGateway(name);
  const ids = { stable: randomUUID(), canary: randomUUID() };
  const snapshot = buildSnapshot({
    subdomain,
    origins: [
      { id: ids.stable, targets: [stable.url] },
      { id: ids.canary, targets: [canary.url] },
    ],
    routes: routes(ids),
  });
  for (const route of snapshot.routes) {
    if (cached(route.path_pattern))
      route.cache_policy = cachePolicy.parse({ mode: 'override', ttl_seconds: 3600 });
  }
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
  return { gateway, stable, canary };
}

async function closeAll(...servers: ({ close(): Promise<unknown> } | undefined)[]): Promise<void> {
  for (const server of servers) await server?.close();
}

/** A test gateway with an in-memory response cache (its metrics registry named `name`). */
async function startCachingGateway(name: string): Promise<{ gateway: TestGateway; cache: ResponseCache }> {
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry(name, { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  return { gateway: await startTestGateway({}, { stages: [createCacheStage(cache)] }), cache };
}
