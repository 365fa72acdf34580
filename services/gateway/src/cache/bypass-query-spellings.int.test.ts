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
 * A route keyed on its path alone (`cache_key_pattern: path`) relies on `bypass.query_params` to keep
 * the answers to the parameters that change the page out of the entry every client gets. Origins read a
 * parameter's name in several spellings (ASP.NET in any case; PHP, Rails and Express's qs `preview[]`;
 * ASP.NET Core and Spring `preview.draft`, a property of `preview`; older Go and Python after a `;`): each must bypass as the name does.
 */

let gateway: TestGateway;
let origin: Server;
const host = 'bypassquery.localhost';

beforeAll(async () => {
  // Shows the draft when the query names `preview` as these origins read names.
  origin = createServer((req, res) => {
    req.resume();
    const query = new URL(req.url ?? '/', 'http://origin').search.slice(1).replaceAll(';', '&');
    // ASP.NET Core and Spring read `preview.draft` as a property of `preview`.
    const names = [...new URLSearchParams(query).keys()].map((name) => name.toLowerCase().split(/[.[]/)[0]);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(names.includes('preview') ? 'unpublished draft' : 'published article');
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('bypass-query-spellings', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'bypassquery',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [
      { origin_id: originId, path_pattern: '/*' },
      { origin_id: originId, path_pattern: '/arrays/*' },
    ],
  });
  const keyedOnPath = (bypassing: string) =>
    cachePolicy.parse({
      ttl_seconds: 3600,
      cache_key_pattern: 'path',
      bypass: { headers: [], cookies: [], query_params: [bypassing] },
    });
  snapshot.routes[0]!.cache_policy = keyedOnPath('preview');
  snapshot.routes[1]!.cache_policy = keyedOnPath('preview[]');
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe('a bypass query parameter on a route keyed on its path', () => {
  it.each(['preview=1', 'Preview=1', 'preview[]=1', 'utm=x;preview=1', 'preview.draft=1', 'Preview.Id=7'])(
    'regression: ?%s bypasses, and the draft never reaches the next client',
    async (query) => {
      const path = `/articles/${randomUUID()}`;
      const preview = await send(gateway, host, `${path}?${query}`);
      expect(preview.text).toBe('unpublished draft');
      const reader = await send(gateway, host, path);
      expect(reader.text).toBe('published article');
      expect(preview.headers['x-cache']).toBe('BYPASS');
    },
  );
});

describe('a bypass query parameter given with [] on a route keyed on its path', () => {
  it.each(['preview[]=1', 'preview[0]=1', 'preview=1', 'preview.draft=1'])(
    '?%s bypasses, and the draft never reaches the next client',
    async (query) => {
      const path = `/arrays/${randomUUID()}`;
      const preview = await send(gateway, host, `${path}?${query}`);
      expect(preview.text).toBe('unpublished draft');
      const reader = await send(gateway, host, path);
      expect(reader.text).toBe('published article');
      expect(preview.headers['x-cache']).toBe('BYPASS');
    },
  );
});
