import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * An entry refreshed in the background (stale-while-revalidate) is stored as a client's fill is: the
 * origin's answer passes what every answer of the route passes before the cache takes it. Regression:
 * a refresh stored the origin's headers as they came, and every HIT after it replayed them: the
 * origin's own CORS fields on a CORS route (credentials the route's policy does not give), and headers
 * the route's response_headers remove.
 */
const HOST = 'refreshed.localhost';
const APP = 'https://app.example.com';

let origin: Server;
let gateway: TestGateway;
let cache: ResponseCache;
let clock = Date.now();
/** Answers so far per path: the body says which one. */
const answers = new Map<string, number>();
/** The Host of each request per path, in order. */
const hosts = new Map<string, string[]>();

beforeAll(async () => {
  origin = createServer((req, res) => {
    const count = (answers.get(req.url!) ?? 0) + 1;
    answers.set(req.url!, count);
    hosts.set(req.url!, [...(hosts.get(req.url!) ?? []), String(req.headers.host)]);
    res.writeHead(200, {
      'content-type': 'text/plain',
      'access-control-allow-origin': '*',
      'access-control-allow-credentials': 'true',
      'x-internal': 'secret',
    });
    res.end(`v${count}`);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('refresh-answers', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
    now: () => clock,
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'refreshed',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [
      {
        origin_id: originId,
        path_pattern: '/*',
        cors: { allow_origins: [APP] },
        response_headers: { remove: ['x-internal'], set: { 'x-served-by': 'gateway' } },
        cache_policy: { ttl_seconds: 1, stale_while_revalidate_seconds: 600 },
      },
      {
        origin_id: originId,
        path_pattern: '/hosted/*',
        preserve_host: true,
        cache_policy: { ttl_seconds: 1, stale_while_revalidate_seconds: 600 },
      },
    ],
  });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

const get = (path: string) => send(gateway, HOST, path, { headers: { origin: APP } });

/** The path's answer once the background refresh stored the origin's second answer. */
async function refreshed(path: string, fetch = get) {
  for (;;) {
    const answer = await fetch(path);
    if (answer.text === 'v2') return answer;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('an entry refreshed in the background', () => {
  it('is answered with the headers a client fill stores: the route’s CORS fields and transforms', async () => {
    const path = `/${randomUUID()}`;
    const miss = await get(path);
    expect(miss.headers['x-cache']).toBe('MISS');
    clock += 2_000;
    const stale = await get(path);
    expect(stale.headers['x-cache']).toBe('STALE');
    const hit = await refreshed(path);
    expect(hit.headers['x-cache']).toBe('HIT');
    for (const answer of [miss, stale, hit]) {
      expect(answer.headers['access-control-allow-origin']).toBe(APP);
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
      expect(answer.headers['x-internal']).toBeUndefined();
      expect(answer.headers['x-served-by']).toBe('gateway');
    }
  });

  it('on a route with preserve_host, reaches the origin with the client’s host, as the client’s fill did', async () => {
    const path = `/hosted/${randomUUID()}`;
    const fetch = (p: string) => send(gateway, 'Refreshed.localhost.', p);
    expect((await fetch(path)).headers['x-cache']).toBe('MISS');
    clock += 2_000;
    expect((await fetch(path)).headers['x-cache']).toBe('STALE');
    await refreshed(path, fetch);
    expect(hosts.get(path)).toEqual([HOST, HOST]);
  });
});
