import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * A route keyed on its path alone (`cache_key_pattern: path`) still forwards the query, and its origin
 * may take the caller's credential from it (`?access_token=`, RFC 6750 §2.3; `?api_key=`, `?sig=`). The
 * answer is that caller's as much as one to Authorization: stored under the path, it went to every
 * client of the path, anonymous ones included.
 */

let gateway: TestGateway;
let origin: Server;
const host = 'credquery.localhost';
const ROUTE_KEY = 'route-held-origin-key';

beforeAll(async () => {
  // /me answers the caller its token names (401 without one); /catalog answers everyone once the
  // route's own key is there; /public says what it was asked for, credential or not, and allows sharing.
  origin = createServer((req, res) => {
    req.resume();
    const query = new URLSearchParams(req.url?.split('?')[1] ?? '');
    const token = query.get('access_token') ?? query.get('api_key') ?? query.get('Sig');
    if (req.url?.startsWith('/catalog')) {
      res.writeHead(query.get('api_key') === ROUTE_KEY ? 200 : 401, { 'content-type': 'text/plain' });
      res.end(`catalog ${randomUUID()}`);
      return;
    }
    if (req.url?.startsWith('/shared')) {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=3600' });
      res.end(`shared ${randomUUID()}`);
      return;
    }
    if (token === null) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('sign in');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`account of ${token}`);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('credential-query', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'credquery',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [
      { origin_id: originId, path_pattern: '/catalog/*', query: { set: { api_key: ROUTE_KEY } } },
      { origin_id: originId, path_pattern: '/*' },
    ],
  });
  for (const route of snapshot.routes)
    route.cache_policy = cachePolicy.parse({ ttl_seconds: 3600, cache_key_pattern: 'path' });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe('a route keyed on its path alone whose origin reads a credential from the query', () => {
  it.each(['access_token', 'api_key', 'Sig'])(
    "regression: a caller's answer to ?%s= is never served to an anonymous client",
    async (name) => {
      const path = `/me/${randomUUID()}`;
      const alice = await send(gateway, host, `${path}?${name}=alice`);
      expect(alice.text).toBe('account of alice');
      const anonymous = await send(gateway, host, path);
      expect(anonymous.text).not.toContain('alice');
    },
  );

  it('stores the answer when the origin allows sharing it (public)', async () => {
    const path = `/shared/${randomUUID()}`;
    const first = await send(gateway, host, `${path}?access_token=alice`);
    const second = await send(gateway, host, path);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.text).toBe(first.text);
  });

  it('stores the answers of a route that sends the origin a credential of its own (the same for every client)', async () => {
    const path = `/catalog/${randomUUID()}`;
    const first = await send(gateway, host, `${path}?api_key=mine`);
    expect(first.status).toBe(200);
    const second = await send(gateway, host, path);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.text).toBe(first.text);
  });

  it('stores the answers to queries without a credential', async () => {
    const path = `/catalog/${randomUUID()}`;
    const first = await send(gateway, host, `${path}?page=2`);
    expect((await send(gateway, host, path)).text).toBe(first.text);
  });
});
