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
