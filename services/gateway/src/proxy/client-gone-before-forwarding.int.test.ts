import { randomUUID } from 'node:crypto';
import { constants } from 'node:http2';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { RedisCacheStore } from '../cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { RedisLimitStore } from '../ratelimit/redis-limit-store.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type BodyEndingOrigin, startBodyEndingOrigin } from '../testing/http-origins.js';
import { connectRaw } from '../testing/raw-connections.js';
import {
  connectRawHttp2,
  dataFrame,
  type HeaderFields,
  headersFrame,
  resetFrame,
} from '../testing/raw-http2.js';
import { buildSnapshot } from '../testing/snapshots.js';

/** The tenant's bound on requests in flight to its origins on the replica. */
const UPSTREAM_REQUESTS = 3;

/**
 * A client that leaves while its request waits on a route stage that answers asynchronously (here the
 * rate limit's Redis round trip; also authentication fetching a key set) is gone before the gateway
 * reaches the origin: nothing is sent. Regression: an HTTP/2 request reset with NO_ERROR before its
 * END_STREAM was forwarded anyway, as a whole POST without a body (node's compatibility layer ends the
 * body of a reset stream as if it had ended, and the gateway, listening for its client only once it
 * sent the request, never learned it was gone), which the origin acted on.
 */
describe('a client gone while its request waits on an asynchronous stage', () => {
  const prefix = `test:rl-client-gone:${uniqueSuffix()}:`;
  let redis: RedisClient;
  let origin: BodyEndingOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startBodyEndingOrigin();
    redis = createRedisClient({ url: TEST_INFRA.redisUrl, name: 'client-gone-before-forwarding' });
    await whenReady(redis);
    const limiter = createRateLimiter({
      store: new RedisLimitStore(redis),
      registry: createMetricsRegistry('client_gone', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
      keyPrefix: prefix,
    });
    gateway = await startTestGateway(
      { GATEWAY_H2C: 'true', GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: String(UPSTREAM_REQUESTS) },
      { stages: [createRateLimitStage(limiter)] },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'gone',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/retried/*',
            rate_limit: { requests_per_second: 1000, burst: 1000 },
            retries: { methods: ['POST'], on: ['503'] },
          },
          {
            origin_id: originId,
            path_pattern: '/*',
            rate_limit: { requests_per_second: 1000, burst: 1000 },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    redis?.disconnect();
    const cleaner = new Redis(TEST_INFRA.redisUrl);
    const keys = await cleaner.keys(`${prefix}*`);
    if (keys.length > 0) await cleaner.del(...keys);
    cleaner.disconnect();
  });

  for (const [name, code] of [
    ['NO_ERROR', constants.NGHTTP2_NO_ERROR],
    ['CANCEL', constants.NGHTTP2_CANCEL],
  ] as const) {
    for (const body of ['', 'partial body']) {
      const path = `/h2-${name}-${body === '' ? 'no-data' : 'part'}`;
      it(`an HTTP/2 POST reset (${name}) before its END_STREAM${body === '' ? ', no DATA yet' : ', after some DATA'}: never a whole request at the origin`, async () => {
        const client = await connectRawHttp2('plain', gateway.gateway.trafficPort);
        try {
          const fields: HeaderFields = [
            [':method', 'POST'],
            [':scheme', 'http'],
            [':authority', 'gone.localhost'],
          ];
          // All in one packet: the reset is read while the rate limit waits for Redis.
          client.send(
            headersFrame(1, [...fields, [':path', path]], false),
            ...(body === '' ? [] : [dataFrame(1, body, false)]),
            resetFrame(1, code),
          );
          // A request after it on the same connection goes through the same stage after it.
          const after = `${path}-after`;
          client.send(headersFrame(3, [...fields, [':path', after], ['content-length', '0']], true));
          await eventually(`the origin to answer ${after}`, () => origin.endings.has(after));
          expect(origin.endings.get(path)?.ending).not.toBe('complete');
        } finally {
          client.destroy();
        }
      });
    }
  }

  // A route retrying POSTs reads a small declared body first, to send it again: the reading must end
  // when the client is gone, never replay what arrived as the whole body, nor wait for the rest (holding
  // one of the tenant's requests in flight to its origins, past which they are refused 503).
  it('on a route retrying POSTs: never sent, and none of the tenant’s upstream requests held', async () => {
    const client = await connectRawHttp2('plain', gateway.gateway.trafficPort);
    try {
      const fields: HeaderFields = [
        [':method', 'POST'],
        [':scheme', 'http'],
        [':authority', 'gone.localhost'],
        ['content-length', '50'],
      ];
      const cutShort: Buffer[] = [];
      for (let i = 0; i < UPSTREAM_REQUESTS + 1; i++) {
        const stream = 1 + 2 * i;
        cutShort.push(
          headersFrame(stream, [...fields, [':path', `/retried/cut-${i}`]], false),
          dataFrame(stream, 'partial body', false),
          resetFrame(stream, constants.NGHTTP2_NO_ERROR),
        );
      }
      client.send(...cutShort);
      const after = '/retried/after';
      const stream = 1 + 2 * (UPSTREAM_REQUESTS + 1);
      client.send(
        headersFrame(stream, [...fields.slice(0, 3), [':path', after], ['content-length', '4']], false),
        dataFrame(stream, 'fine', true),
      );
      await eventually(`the answer to ${after}`, () => client.answer(stream).ended);
      expect(client.answer(stream).status).toBe(200);
      expect(origin.endings.get(after)).toEqual({ ending: 'complete', bytes: 4 });
      for (let i = 0; i < UPSTREAM_REQUESTS + 1; i++)
        expect(origin.endings.get(`/retried/cut-${i}`)?.ending).not.toBe('complete');
    } finally {
      client.destroy();
    }
  });

  it('HTTP/1.1 clients that leave mid-body hold none of the tenant’s upstream requests', async () => {
    for (let i = 0; i <= UPSTREAM_REQUESTS; i++) {
      const client = await connectRaw('plain', gateway.gateway.trafficPort);
      client.socket.write(
        `POST /h1-held-${i} HTTP/1.1\r\nHost: gone.localhost\r\nContent-Length: 50\r\n\r\nhello`,
      );
      client.socket.destroy();
    }
    const after = await send(gateway, 'gone.localhost', '/h1-held-after');
    expect(after.status).toBe(200);
    for (let i = 0; i <= UPSTREAM_REQUESTS; i++)
      expect(origin.endings.get(`/h1-held-${i}`)?.ending).not.toBe('complete');
  });
});

/**
 * The same with the cache's lookup in its shared store being the wait: resumed after the client left,
 * the lookup makes the request a MISS's leader, which fills the entry for the requests that wait for it
 * (on this replica and, through the store's lease, on the others). Never sent, it must give that up at
 * once: the requests for the same key go to the origin themselves instead of waiting for it.
 */
describe('a client gone while the cache looks its request up in the shared store', () => {
  let redis: TestRedis;
  let cache: ResponseCache;
  let origin: BodyEndingOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startBodyEndingOrigin();
    redis = createTestRedis('client-gone-cache');
    cache = createResponseCache({
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      l1MaxBytes: 1_000_000,
      registry: createMetricsRegistry('client_gone_cache', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
      // Longer than the test's own timeout: a leader never given up holds its followers that long.
      coalesceTimeoutMs: 120_000,
    });
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { stages: [createCacheStage(cache)] });
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'gonecache',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await cache?.close();
    await origin?.close();
    await redis?.cleanup();
  });

  it('the requests for the same key are not held back for it', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write('GET /doc HTTP/1.1\r\nHost: gonecache.localhost\r\n\r\n');
    client.socket.destroy();
    const next = await send(gateway, 'gonecache.localhost', '/doc');
    expect(next.status).toBe(200);
    expect(origin.endings.get('/doc')?.ending).toBe('complete');
  });
});
