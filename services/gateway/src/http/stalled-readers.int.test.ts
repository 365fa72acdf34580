import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { RedisCacheStore } from '../cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw, type RawClient } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * GATEWAY_SEND_TIMEOUT_MS over HTTP/1.1. Regression test: a response the gateway writes whole (a cache
 * HIT) to a client that reads none of it sat in the connection's buffers for as long as the client
 * kept the connection open: no timer runs while a response is in flight (the keep-alive timeout starts
 * after it), and a proxied body's route idle timeout does not apply to a stored one. Clients that never
 * read a large HIT held connection slots (and, for an entry read from Redis, a copy of it each) for
 * ever. HTTP/2 cancels such a stream after GATEWAY_HTTP2_IDLE_TIMEOUT_SECONDS; HTTP/1.1 now closes the
 * connection once the client took nothing of its response for the send timeout (nginx's send_timeout).
 */
const HOST = 'stalledreaders.localhost';
// More than the socket buffers of both ends hold (loopback's grow to 32 MiB), so a client that does not
// read stops the response.
const BODY_BYTES = 60 * 1024 * 1024;

let origin: Server;
let gateway: TestGateway;
let cache: ResponseCache;
let redis: TestRedis;
const clients: RawClient[] = [];

beforeAll(async () => {
  origin = createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BODY_BYTES });
    res.end(Buffer.alloc(BODY_BYTES, 'x'));
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  redis = createTestRedis('stalled-readers');
  cache = createResponseCache({
    store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
    l1MaxBytes: 2 * BODY_BYTES,
    fillBudgetBytes: 5 * BODY_BYTES,
    registry: createMetricsRegistry('stalled-readers', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    { GATEWAY_SEND_TIMEOUT_MS: '1000' },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'stalledreaders',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
  snapshot.routes[0]!.cache_policy = cachePolicy.parse({
    ttl_seconds: 300,
    max_body_bytes: 64 * 1024 * 1024,
  });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  for (const client of clients) client.socket.destroy();
  await gateway?.close();
  await cache?.close();
  await new Promise<void>((resolve) => {
    origin?.close(() => resolve());
    origin?.closeAllConnections();
  });
  await redis?.cleanup();
});

function openConnections(): Promise<number> {
  return new Promise((resolve, reject) =>
    gateway.gateway.trafficServer.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

describe('an HTTP/1.1 client that reads nothing of its response', () => {
  it('has its connection closed after the send timeout when the response is a cache HIT', async () => {
    const fill = await send(gateway, HOST, '/large');
    expect(fill.headers['x-cache']).toBe('MISS');
    expect(fill.text.length).toBe(BODY_BYTES);

    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    clients.push(client);
    client.socket.write(`GET /large HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    client.socket.pause();
    await vi.waitFor(async () => expect(await openConnections()).toBe(0), { timeout: 15_000, interval: 100 });
    // What reached the client before the cut, then the end of the connection.
    client.socket.resume();
    await client.closed;
    expect(client.received()).toContain('X-Cache: HIT');
    expect(client.received().length).toBeLessThan(BODY_BYTES);
  });

  it('keeps a connection whose client reads a HIT slowly but steadily, and delivers it whole', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    clients.push(client);
    client.socket.write(`GET /large HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
    let closed = false;
    void client.closed.then(() => {
      closed = true;
    });
    // Reads a little every 100 ms: never a whole send timeout without taking something.
    const reading = setInterval(() => {
      client.socket.resume();
      setTimeout(() => client.socket.pause(), 5);
    }, 100);
    await vi.waitFor(() => expect(closed).toBe(true), { timeout: 25_000, interval: 100 });
    clearInterval(reading);
    expect(client.received()).toContain('X-Cache: HIT');
    expect(client.received().length).toBeGreaterThan(BODY_BYTES);
  });
});
