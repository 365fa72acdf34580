import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { RedisCacheStore } from '../cache/redis-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
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
 * Over plain HTTP/1.1 and HTTPS/1.1, whose sockets count the bytes waiting for the client differently.
 */
const HOST = 'stalledreaders.localhost';
// More than the socket buffers of both ends hold (loopback's grow to 32 MiB), so a client that does not
// read stops the response.
const BODY_BYTES = 60 * 1024 * 1024;

let origin: Server;
let gateway: TestGateway;
let cache: ResponseCache;
let redis: TestRedis;
let certificateDir: string;
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
    // One tenant here: the whole L1 is its, so a HIT right after the fill comes from memory.
    l1TenantShare: 1,
    fillBudgetBytes: 5 * BODY_BYTES,
    registry: createMetricsRegistry('stalled-readers', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
  certificateDir = await mkdtemp(path.join(tmpdir(), 'gateway-stalled-readers-'));
  await writeFile(path.join(certificateDir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(certificateDir, 'key.pem'), certificate.privateKeyPem);
  gateway = await startTestGateway(
    {
      GATEWAY_SEND_TIMEOUT_MS: '1000',
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT_FILE: path.join(certificateDir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(certificateDir, 'key.pem'),
    },
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
  if (certificateDir) await rm(certificateDir, { recursive: true, force: true });
});

type Listener = 'plain' | 'tls';

function openConnections(listener: Listener): Promise<number> {
  const server = listener === 'tls' ? gateway.gateway.tlsServer! : gateway.gateway.trafficServer;
  return new Promise((resolve, reject) =>
    server.getConnections((error, count) => (error ? reject(error) : resolve(count))),
  );
}

const port = (listener: Listener) =>
  listener === 'tls' ? gateway.gateway.tlsPort! : gateway.gateway.trafficPort;

describe.each(['plain', 'tls'] as const)(
  'an HTTP/1.1 client that reads nothing of its response (%s)',
  (listener) => {
    it('has its connection closed after the send timeout when the response is a cache HIT', async () => {
      // The cache keys entries by scheme: each listener fills its own.
      const fill = await connectRaw(listener, port(listener), HOST);
      fill.socket.write(`GET /large HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`);
      await fill.closed;
      expect(fill.received()).toContain('X-Cache: MISS');
      expect(fill.received().length).toBeGreaterThan(BODY_BYTES);

      const client = await connectRaw(listener, port(listener), HOST);
      clients.push(client);
      client.socket.write(`GET /large HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
      client.socket.pause();
      await vi.waitFor(async () => expect(await openConnections(listener)).toBe(0), {
        timeout: 15_000,
        interval: 100,
      });
      // What reached the client before the cut, then the end of the connection.
      client.socket.resume();
      await client.closed;
      expect(client.received()).toContain('X-Cache: HIT');
      expect(client.received().length).toBeLessThan(BODY_BYTES);
    });

    it('keeps a connection whose client reads a HIT slowly but steadily, and delivers it whole', async () => {
      const client = await connectRaw(listener, port(listener), HOST);
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
  },
);
