import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import http2 from 'node:http2';
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
 * A fill holds what it collected of the body it writes to its client, counted in its tenant's share of
 * the replica's fill budget until it stores or gives up (the fill deadline, 30 s). One HTTP/2 client
 * asking for large cacheable answers at URLs of its choosing (a query string each) and reading none held
 * the whole share: every other client of the tenant was answered BYPASS, nothing stored, each request to
 * the origin. Fills whose client holds their body back give their bytes back once the tenant's fills hold
 * half its share.
 */
const BODY = 300_000;
/** The replica's fill budget: the tenant's share is a quarter, 1 MiB. */
const FILL_BUDGET = 4 * 1024 * 1024;
const HOST = 'held-fills.localhost';

let origin: Server;
let gateway: TestGateway;
let cache: ResponseCache;

beforeAll(async () => {
  origin = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'cache-control': 'public, max-age=600', 'content-length': BODY });
    res.end(Buffer.alloc(BODY, 'x'));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 64_000_000 }),
    l1MaxBytes: 16 * 1024 * 1024,
    fillBudgetBytes: FILL_BUDGET,
    registry: createMetricsRegistry('held-fills', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'held-fills',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [{ origin_id: originId, path_pattern: '/*', cache_policy: { ttl_seconds: 600 } }],
  });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  origin.closeAllConnections();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

describe("one client's held-back fills", () => {
  it("leave the tenant's other clients their answers cached", async () => {
    const session = http2.connect(`http://127.0.0.1:${gateway.gateway.trafficPort}`, {
      settings: { initialWindowSize: 0 },
    });
    session.on('error', () => {});
    await new Promise((resolve) => session.once('remoteSettings', resolve));
    const streams = Array.from({ length: 30 }, () => {
      const stream = session.request({ ':path': `/asset?bust=${randomUUID()}`, ':authority': HOST });
      stream.on('error', () => {});
      stream.end();
      return stream;
    });
    try {
      await Promise.all(streams.map((stream) => new Promise((resolve) => stream.once('response', resolve))));
      // Past the second the fills' client has held them back.
      await new Promise((resolve) => setTimeout(resolve, 3_000));

      const first = await send(gateway, HOST, '/asset/popular.js');
      const second = await send(gateway, HOST, '/asset/popular.js');
      expect([first.headers['x-cache'], second.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    } finally {
      session.destroy();
    }
  }, 30_000);
});
