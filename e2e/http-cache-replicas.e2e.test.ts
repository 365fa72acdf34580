import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { tenantKeyspace } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whenCacheServes } from './cache-bypass.js';
import { storedInRedis } from './cache-store.js';
import {
  eventually,
  type HttpResponse,
  sleep,
  startOrigin,
  stopAllServices,
  type TestOrigin,
} from './harness.js';
import { type LoneGateway, startLoneGateways } from './lone-gateway.js';

/**
 * Stale serving (RFC 5861) and stampede control across replicas: three real gateway processes on one
 * Redis key prefix (like a deployment's replicas) in front of local origins that set the headers.
 * `/swr/…`, `/sie/…`, `/stampede/…` go to `origin`; `/flaky/…` to `flaky`, which the tests stop.
 */
const SUBDOMAIN = 'rfcreplicas';
const tenantId = randomUUID();

let origin: TestOrigin;
let flaky: TestOrigin | undefined;
let replicas: LoneGateway[] = [];
/** Per URL: the origin answers 503 while set. */
const failing = new Set<string>();
/** Per URL: the origin holds its answer this long. */
const delays = new Map<string, number>();
const originHits = (path: string) => origin.hits.get(path) ?? 0;

function answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = req.url ?? '/';
  const n = origin.hits.get(url) ?? 0;
  const kind = url.split('/')[1] ?? '';
  const headers: Record<string, string> = { 'content-type': 'text/plain' };
  // The first answer goes stale after a second; the refreshed one stays fresh.
  if (kind === 'swr') headers['cache-control'] = `max-age=${n === 1 ? 1 : 600}, stale-while-revalidate=600`;
  else if (kind === 'sie') headers['cache-control'] = 'max-age=1, stale-if-error=600';
  else if (kind === 'sie-policy') headers['cache-control'] = 'max-age=1';
  else if (kind === 'sie-must-revalidate')
    headers['cache-control'] = 'max-age=1, must-revalidate, stale-if-error=600';
  else if (kind === 'stampede') headers['cache-control'] = 'max-age=600';
  else if (kind === 'soft') {
    headers['cache-control'] = 'max-age=600, stale-if-error=600';
    headers['surrogate-key'] = `product-${url.split('/')[2]}`;
  } else if (kind === 'tagged') {
    headers['cache-control'] = 'max-age=600';
    headers['surrogate-key'] = `product-${url.split('/')[2]} catalog`;
    headers['cache-tag'] = 'shop';
  } else return false;
  const respond = () => {
    if (failing.has(url)) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('origin down');
      return;
    }
    res.writeHead(200, headers);
    res.end(`${url} #${n}`);
  };
  const delay = delays.get(url);
  if (delay === undefined) respond();
  else setTimeout(respond, delay);
  return true;
}

beforeAll(async () => {
  origin = await startOrigin('rfc-replicas-origin', answer);
  flaky = await startOrigin('rfc-flaky-origin', (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=1, stale-if-error=600' });
    res.end(`flaky ${req.url}`);
    return true;
  });
  const originId = randomUUID();
  const flakyId = randomUUID();
  replicas = await startLoneGateways({
    count: 3,
    snapshots: [
      buildSnapshot({
        tenantId,
        subdomain: SUBDOMAIN,
        origins: [
          { id: originId, targets: [origin.url] },
          { id: flakyId, targets: [flaky.url], timeout_seconds: 2 },
        ],
        routes: [
          { origin_id: originId, path_pattern: '/swr/*', cache_policy: {} },
          { origin_id: originId, path_pattern: '/sie/*', cache_policy: {} },
          { origin_id: originId, path_pattern: '/sie-must-revalidate/*', cache_policy: {} },
          {
            origin_id: originId,
            path_pattern: '/sie-policy/*',
            cache_policy: { stale_if_error_seconds: 600 },
          },
          { origin_id: originId, path_pattern: '/stampede/*', cache_policy: {} },
          { origin_id: originId, path_pattern: '/tagged/*', cache_policy: {} },
          { origin_id: originId, path_pattern: '/soft/*', cache_policy: {} },
          { origin_id: flakyId, path_pattern: '/flaky/*', cache_policy: {} },
        ],
      }),
    ],
  });
  for (const replica of replicas) await whenCacheServes(replica, SUBDOMAIN, '/stampede/warm-up');
}, 240_000);

afterAll(async () => {
  await Promise.all(replicas.map((replica) => replica.close()));
  await origin?.close();
  await flaky?.close();
  await stopAllServices();
}, 60_000);

const on = (index: number, path: string) => replicas[index % replicas.length]!.request(SUBDOMAIN, path);

/**
 * A MISS on replica 0, once its entry is in Redis: the fill's write lands after the response went out,
 * so on a busy machine another replica asked at once could still miss it.
 */
async function filled(path: string): Promise<HttpResponse> {
  const redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000, name: 'fill-check' });
  await whenReady(redis);
  try {
    const sizes = `${tenantKeyspace(replicas[0]!.keyPrefix, tenantId)}bound:sizes`;
    const before = await redis.hlen(sizes);
    const first = await on(0, path);
    expect(first.status, replicas[0]!.service.tail()).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    await eventually(`${path} is stored in Redis`, async () => (await redis.hlen(sizes)) > before, {
      timeoutMs: 10_000,
    });
    return first;
  } finally {
    redis.disconnect();
  }
}

describe('stampede control across replicas', () => {
  it('100 concurrent misses for one key over three replicas make one origin request', async () => {
    const path = '/stampede/one-key';
    delays.set(path, 300);
    const responses = await Promise.all(Array.from({ length: 100 }, (_, i) => on(i, path)));
    const origins = originHits(path);
    const outcomes = new Map<string, number>();
    for (const response of responses) {
      const outcome = String(response.headers['x-cache']);
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    console.info(
      `[e2e] cache stampede: 100 concurrent misses over ${replicas.length} replicas → ${origins} origin request(s); ` +
        `X-Cache ${[...outcomes].map(([name, count]) => `${name}×${count}`).join(', ')}`,
    );
    expect(responses.map((response) => response.status)).toEqual(Array(100).fill(200));
    expect(new Set(responses.map((response) => response.body))).toEqual(new Set([`${path} #1`]));
    expect(origins).toBe(1);
  });
});

describe('stale-while-revalidate (RFC 5861 §3)', () => {
  it('serves the stale entry and refreshes it once in the background, across replicas', async () => {
    const path = '/swr/item';
    await filled(path);
    await sleep(1_300); // past max-age=1
    delays.set(path, 2_000); // the refresh is still running while the replicas answer
    const responses = await Promise.all(Array.from({ length: 30 }, (_, i) => on(i, path)));
    expect(responses.map((response) => response.status)).toEqual(Array(30).fill(200));
    // STALE while the refresh runs; a request answered after it stored the new response gets that.
    const answers = new Set(responses.map((response) => `${response.headers['x-cache']} ${response.body}`));
    expect(answers.has(`STALE ${path} #1`)).toBe(true);
    for (const answer of answers) expect([`STALE ${path} #1`, `HIT ${path} #2`]).toContain(answer);
    let last: HttpResponse | undefined;
    await eventually(
      'the refreshed response is served',
      async () => {
        last = await on(1, path);
        return last.headers['x-cache'] === 'HIT' && last.body === `${path} #2`;
      },
      { timeoutMs: 15_000, intervalMs: 100 },
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}; origin saw ${originHits(path)}; last ${JSON.stringify(last)}\n${replicas.map((r) => r.service.tail()).join('\n')}`,
      );
    });
    expect(originHits(path)).toBe(2);
  });
});

describe('stale-if-error (RFC 5861 §4)', () => {
  it('the origin answers 503: the stale entry is served (origin directive, then policy field)', async () => {
    for (const path of ['/sie/item', '/sie-policy/item']) {
      await filled(path);
      await sleep(1_300);
      failing.add(path);
      for (let i = 0; i < 3; i++) {
        const response = await on(i, path);
        expect(response.status, path).toBe(200);
        expect(response.headers['x-cache'], path).toBe('STALE');
        expect(response.body, path).toBe(`${path} #1`);
      }
      failing.delete(path);
    }
  });

  it('must-revalidate: the origin’s error reaches the client', async () => {
    const path = '/sie-must-revalidate/item';
    await filled(path);
    await sleep(1_300);
    failing.add(path);
    const response = await on(1, path);
    expect(response.status).toBe(503);
    failing.delete(path);
  });

  it('the origin is unreachable (and its breaker opens): the stale entry keeps being served', async () => {
    const path = '/flaky/item';
    await filled(path);
    await sleep(1_300);
    await flaky!.close();
    flaky = undefined;
    for (let i = 0; i < 12; i++) {
      const response = await on(i, path);
      expect(response.status, response.body).toBe(200);
      expect(response.headers['x-cache']).toBe('STALE');
      expect(response.body).toBe(`flaky ${path}`);
    }
  });
});

describe('purge by tag (Surrogate-Key / Cache-Tag)', () => {
  it('drops the tagged responses from Redis and from every replica’s memory; others stay', async () => {
    // Each replica holds both responses in its own memory (L1), and Redis has them.
    for (const path of ['/tagged/a', '/tagged/b']) {
      await filled(path);
      for (let i = 1; i < 3; i++) expect((await on(i, path)).headers['x-cache']).toBe('HIT');
    }
    // The purge the control plane sends for POST /api/v1/tenants/:id/cache/purge {"tags": ["product-a"]}.
    const redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000, name: 'purger' });
    await whenReady(redis);
    try {
      await createRedisCachePurger(redis, replicas[0]!.keyPrefix).purgeTags(tenantId, ['product-a']);
    } finally {
      redis.disconnect();
    }
    for (let i = 0; i < 3; i++) {
      await eventually(
        `replica ${i} no longer serves the purged response`,
        async () => {
          const response = await on(i, '/tagged/a');
          return response.body === '/tagged/a #2';
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      // The refetch's write lands after its answer went out; the next replica should find it.
      if (i === 0) await storedInRedis(replicas[0]!.keyPrefix, tenantId, '/tagged/a #2');
      const untouched = await on(i, '/tagged/b');
      expect(untouched.headers['x-cache']).toBe('HIT');
      expect(untouched.body).toBe('/tagged/b #1');
    }
    expect(originHits('/tagged/a')).toBe(2);
    expect(originHits('/tagged/b')).toBe(1);
  });
});

describe('soft purge by tag', () => {
  it('marks the tagged responses stale on every replica: kept for stale-if-error, refetched otherwise', async () => {
    const path = '/soft/c';
    await filled(path);
    for (let i = 1; i < 3; i++) expect((await on(i, path)).headers['x-cache']).toBe('HIT');
    const redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000, name: 'purger' });
    await whenReady(redis);
    try {
      await createRedisCachePurger(redis, replicas[0]!.keyPrefix).purgeTags(tenantId, ['product-c'], {
        soft: true,
      });
    } finally {
      redis.disconnect();
    }
    // The origin is down: every replica asks it (the entry is stale now) and serves the kept copy.
    failing.add(path);
    for (let i = 0; i < 3; i++) {
      await eventually(
        `replica ${i} treats the soft-purged response as stale`,
        async () => {
          const response = await on(i, path);
          return response.headers['x-cache'] === 'STALE' && response.body === `${path} #1`;
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
    }
    failing.delete(path);
    const refetched = await on(0, path);
    expect(refetched.headers['x-cache']).toBe('MISS');
    expect(refetched.body).not.toBe(`${path} #1`);
    await storedInRedis(replicas[0]!.keyPrefix, tenantId, refetched.body);
    for (let i = 1; i < 3; i++) {
      await eventually(
        `replica ${i} serves the refetched response`,
        async () => (await on(i, path)).body === refetched.body,
        { timeoutMs: 10_000, intervalMs: 50 },
      );
    }
  });
});
