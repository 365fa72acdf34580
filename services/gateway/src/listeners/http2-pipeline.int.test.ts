import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { type ClientHttp2Session, constants } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cachePolicy, rateLimitPolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { http2Connect, http2Request, https1Request } from '@vantageedge/shared/testing/tls-clients';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache, type ResponseCache } from '../cache/response-cache.js';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * HTTP/2 clients get the same pipeline as HTTP/1.1 ones: the rate limit and the response cache answer
 * them, their requests are counted by route, and the request limits (header bytes, header lines) hold
 * for every protocol and listener, as a 431 in the project's error shape.
 */
const HOST = 'h2pipe.localhost';
const MAX_HEADER_BYTES = 4096;
const MAX_HEADERS = 20;
const MAX_STREAMS = 7;

let origin: TestOrigin;
let gateway: TestGateway;
let cache: ResponseCache;
let dir: string;
let session: ClientHttp2Session;
let tenantId: string;
let publicRouteId: string;

function h2(pathname: string, headers: Record<string, string> = {}) {
  return http2Request(session, { path: pathname, authority: HOST, headers });
}

/** Requests of the public route answered 2xx, from the gateway's latency histogram. */
async function publicRouteCount(): Promise<number> {
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  const series = `vantageedge_gateway_request_duration_seconds_count{tenant="${tenantId}",route="${publicRouteId}",status_class="2xx"} `;
  const line = metrics.split('\n').find((entry) => entry.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

function manyHeaders(count: number): Record<string, string> {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`x-extra-${i}`, String(i)]));
}

beforeAll(async () => {
  origin = await startTestOrigin('h2-origin');
  dir = await mkdtemp(path.join(tmpdir(), 'gateway-h2-pipeline-'));
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost'] });
  await writeFile(path.join(dir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(dir, 'key.pem'), certificate.privateKeyPem);
  const logger = createLogger({ service: 'h2-pipeline-test', level: 'error' });
  const stagesRegistry = new Registry();
  cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: stagesRegistry,
    logger,
  });
  const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry: stagesRegistry, logger });
  gateway = await startTestGateway(
    {
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
      GATEWAY_H2C: 'true',
      GATEWAY_MAX_HEADER_BYTES: String(MAX_HEADER_BYTES),
      GATEWAY_MAX_HEADERS_COUNT: String(MAX_HEADERS),
      GATEWAY_HTTP2_MAX_CONCURRENT_STREAMS: String(MAX_STREAMS),
    },
    { stages: [createRateLimitStage(limiter), createCacheStage(cache)] },
  );
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'h2pipe',
    origins: [{ id: originId, targets: [origin.url] }],
    routes: [
      { origin_id: originId, path_pattern: '/public/*' },
      { origin_id: originId, path_pattern: '/cached/*' },
      { origin_id: originId, path_pattern: '/limited/*' },
    ],
  });
  tenantId = snapshot.tenant_id;
  publicRouteId = snapshot.routes[0]!.id;
  snapshot.routes[1]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
  // A bucket that refills far slower than the test runs: two requests pass, the third is refused.
  snapshot.routes[2]!.rate_limit = rateLimitPolicy.parse({
    requests_per_second: 0.001,
    burst: 2,
    scope: 'route',
  });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(tenantId);
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await cache?.close();
  await origin?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('HTTP/2 through the route stages', () => {
  it('the response cache answers HTTP/2 clients: a MISS fills it, the next request is a HIT the origin never sees', async () => {
    const first = await h2('/cached/item');
    const second = await h2('/cached/item');
    expect(first.status).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    expect(second.status).toBe(200);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.body).toBe(first.body);
    expect(origin.seen.filter((request) => request.url === '/cached/item')).toHaveLength(1);
  });

  it('the rate limit counts HTTP/2 requests: over the burst is a 429 with RateLimit headers', async () => {
    const statuses: number[] = [];
    let refused: Awaited<ReturnType<typeof h2>> | undefined;
    for (let i = 0; i < 3; i++) {
      const response = await h2(`/limited/${i}`);
      statuses.push(response.status);
      if (response.status === 429) refused = response;
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(JSON.parse(refused!.body).error.code).toBe('rate_limited');
    expect(refused!.headers['retry-after']).toMatch(/^\d+$/);
    expect(origin.seen.some((request) => request.url === '/limited/2')).toBe(false);
  });

  it('HTTP/2 requests are counted in the route metrics like HTTP/1.1 ones', async () => {
    const before = await publicRouteCount();
    expect((await h2('/public/counted')).status).toBe(200);
    expect(await publicRouteCount()).toBe(before + 1);
  });
});

describe('HTTP/2 clients that leave', () => {
  it('regression: an HTTP/2 client that cancels its request aborts the origin request (it ran on until the origin answered)', async () => {
    const hanging = createServer();
    const originSaw = new Promise<void>((resolve) => hanging.once('request', () => resolve()));
    const originRequestClosed = new Promise<void>((resolve) =>
      hanging.once('request', (req) => req.socket.once('close', () => resolve())),
    );
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'h2leave',
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(hanging.address() as AddressInfo).port}`] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
    const leaving = http2Connect(gateway.url);
    try {
      const stream = leaving.request({ ':path': '/never-answered', ':authority': 'h2leave.localhost' });
      stream.on('error', () => {});
      stream.end();
      await originSaw;
      stream.close(constants.NGHTTP2_CANCEL);
      // The gateway lets go of the origin request: its connection to the origin is closed.
      await originRequestClosed;
    } finally {
      leaving.destroy();
      hanging.closeAllConnections();
      await new Promise<void>((resolve) => hanging.close(() => resolve()));
    }
  });
});

describe('request limits on HTTP/2 and HTTPS/1.1', () => {
  it('advertises the stream and header-list limits in its HTTP/2 settings', async () => {
    const settings = session.remoteSettings;
    expect(settings.maxConcurrentStreams).toBe(MAX_STREAMS);
    expect(settings.maxHeaderListSize).toBe(MAX_HEADER_BYTES);
  });

  it('an HTTP/2 header list over GATEWAY_MAX_HEADER_BYTES ends its stream, is never forwarded, and the session goes on', async () => {
    // The client was told the limit in SETTINGS_MAX_HEADER_LIST_SIZE; HTTP/2 refuses the stream (RST_STREAM).
    const refused = await h2('/public/big-headers', { 'x-big': 'a'.repeat(MAX_HEADER_BYTES * 2) }).then(
      (response) => response.status,
      (error: Error) => error.message,
    );
    expect(String(refused)).toMatch(/^431$|ENHANCE_YOUR_CALM|REFUSED_STREAM/);
    expect(origin.seen.some((request) => request.url === '/public/big-headers')).toBe(false);
    expect((await h2('/public/after-big')).status).toBe(200);
  });

  it('regression: an HTTP/2 request with more header lines than GATEWAY_MAX_HEADERS_COUNT is answered 431, not forwarded', async () => {
    const response = await h2('/public/many-headers', manyHeaders(MAX_HEADERS + 5));
    expect(response.status).toBe(431);
    expect(JSON.parse(response.body).error.code).toBe('too_many_headers');
    expect(origin.seen.some((request) => request.url === '/public/many-headers')).toBe(false);
    expect((await h2('/public/few-headers', manyHeaders(3))).status).toBe(200);
  });

  it('regression: HTTPS/1.1 on the TLS port refuses more header lines than GATEWAY_MAX_HEADERS_COUNT too', async () => {
    const port = gateway.gateway.tlsPort as number;
    const refused = await https1Request(port, HOST, '/public/tls-many', {
      headers: manyHeaders(MAX_HEADERS + 5),
    });
    expect(refused.status).toBe(431);
    expect(JSON.parse(refused.body).error.code).toBe('too_many_headers');
    expect(origin.seen.some((request) => request.url === '/public/tls-many')).toBe(false);
    expect((await https1Request(port, HOST, '/public/tls-few')).status).toBe(200);
  });
});
