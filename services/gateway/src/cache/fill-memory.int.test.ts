import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import net from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { liveHeapAndBufferBytes } from '@vantageedge/shared/testing/live-memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * What a fill holds in memory is what its fill budget counts. Regression found with a hostile origin:
 * a body sent in 1-byte chunks (`1\r\nx\r\n`, each its own Buffer for the gateway) was kept chunk by
 * chunk, each costing a Buffer object and a slot on top of the one byte the budget counted: a 1 MiB
 * body held some 100 MiB, so one tenant's fills, within their share of the budget, could exhaust the
 * replica's memory and take every tenant down with it.
 */
const HOST = 'fill-memory.localhost';
const BODY_BYTES = 1024 * 1024;
/** Generous: the body itself, the test's own allocations and noise; far below what chunks kept cost. */
const HELD_AT_MOST = 24 * 1024 * 1024;

/** Sends BODY_BYTES in 1-byte chunks, then holds the response open (the fill stays in flight); `/small`: 2 bytes. */
function startTrickleOrigin(): Promise<net.Server> {
  const chunk = Buffer.from('1\r\nx\r\n', 'latin1');
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    socket.once('data', (request: Buffer) => {
      if (request.toString('latin1').startsWith('GET /small ')) {
        socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
        return;
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
      const perWrite = 16 * 1024;
      let sent = 0;
      const more = (): void => {
        while (sent < BODY_BYTES) {
          sent += perWrite;
          if (!socket.write(Buffer.concat(Array.from({ length: perWrite }, () => chunk)))) {
            socket.once('drain', more);
            return;
          }
        }
      };
      more();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Reads `bytes` of the path's body, then leaves the connection open; resolves with its X-Cache. */
function readBody(path: string, bytes: number): Promise<{ xCache: string | undefined; close: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: gateway.gateway.trafficPort, path, headers: { host: HOST }, agent: false },
      (res) => {
        let received = 0;
        res.on('error', () => {});
        res.on('data', (data: Buffer) => {
          received += data.length;
          if (received >= bytes)
            resolve({ xCache: res.headers['x-cache'] as string | undefined, close: () => req.destroy() });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

let origin: net.Server;
let gateway: TestGateway;
let cache: ResponseCache;

beforeAll(async () => {
  origin = await startTrickleOrigin();
  cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 8_000_000 }),
    l1MaxBytes: 8_000_000,
    registry: createMetricsRegistry('fill-memory', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'fill-memory',
    origins: [
      {
        id: originId,
        targets: [`http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`],
        timeout_seconds: 30,
      },
    ],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
  snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60, max_body_bytes: 4 * BODY_BYTES });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  await new Promise<void>((resolve) => {
    origin?.close(() => resolve());
  });
});

describe('a cache fill of a body sent in 1-byte chunks', () => {
  it('holds about the bytes it collected, as its fill budget counts them', async () => {
    // Warm up (pools, the route's compiled stages) so the measure below is the fill's alone.
    expect((await send(gateway, HOST, '/small')).text).toBe('ok');
    const before = liveHeapAndBufferBytes();
    const fill = await readBody(`/trickled/${randomUUID()}`, BODY_BYTES);
    expect(fill.xCache).toBe('MISS');
    const held = liveHeapAndBufferBytes() - before;
    fill.close();
    expect(held).toBeLessThan(HELD_AT_MOST);
  });
});
