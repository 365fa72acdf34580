import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest, type Server, type ServerResponse } from 'node:http';
import { connect as http2Connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache } from '../cache/response-cache.js';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

const HOST = 'events.localhost';
/** Far below the cache's coalescing wait (10 s), which a client stuck behind another's stream sat out. */
const AT_ONCE_MS = 3_000;

/**
 * An origin of server-sent events. `/…?cc=<Cache-Control>` sends its head and one event at once and
 * holds the stream open until its client leaves (`etag`: its head has `ETag: "stream"`; `ended`: it ends
 * after that event). `/late/…/head` sends its head alone, other `/late…` paths nothing (not even the
 * head, as node does until the first write), until `releaseLate()`.
 */
interface EventOrigin {
  readonly url: string;
  /** The paths asked for, in order. */
  readonly asked: string[];
  /** The paths of the streams open right now. */
  openPaths(): string[];
  releaseLate(): void;
  close(): Promise<void>;
}

async function startEventOrigin(): Promise<EventOrigin> {
  const open = new Map<ServerResponse, string>();
  const late: ServerResponse[] = [];
  const asked: string[] = [];
  let sequence = 0;
  const firstEvent = (res: ServerResponse) => res.write(`id: ${++sequence}\ndata: first\n\n`);
  const server: Server = createServer((req, res) => {
    asked.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://origin');
    open.set(res, req.url ?? '');
    res.on('close', () => open.delete(res));
    const cacheControl = url.searchParams.get('cc');
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      ...(cacheControl === null ? {} : { 'cache-control': cacheControl }),
      ...(url.searchParams.has('etag') ? { etag: '"stream"' } : {}),
    });
    if (url.pathname.startsWith('/late')) {
      if (url.pathname.endsWith('/head')) res.flushHeaders();
      late.push(res);
      return;
    }
    firstEvent(res);
    if (url.searchParams.has('ended')) res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    asked,
    openPaths: () => [...open.values()],
    releaseLate: () => {
      for (const res of late.splice(0)) firstEvent(res);
    },
    close: async () => {
      for (const res of open.keys()) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface OpenStream {
  readonly headers: Record<string, unknown>;
  /** The first event as the client read it. */
  readonly text: string;
  leave(): void;
}

/** Opens the stream over HTTP/1.1 and reads its first chunk. */
function openStream(port: number, path: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: HOST, ...headers }, agent: false },
      (res) => {
        res.on('error', () => {});
        res.once('data', (chunk: Buffer) =>
          resolve({ headers: res.headers, text: chunk.toString('utf8'), leave: () => req.destroy() }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens the stream over HTTP/1.1: resolves with its head alone, whether or not any event came. */
function streamHead(
  port: number,
  path: string,
): Promise<{ status: number; headers: Record<string, unknown>; leave: () => void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, path, headers: { host: HOST }, agent: false },
      (res) => {
        res.on('error', () => {});
        resolve({ status: res.statusCode ?? 0, headers: res.headers, leave: () => req.destroy() });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens the stream over HTTP/2 (h2c): resolves with its head alone. */
function http2StreamHead(port: number, path: string): Promise<{ status: number; leave: () => void }> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({ ':path': path, ':authority': HOST });
    stream.on('error', reject);
    stream.on('response', (head) =>
      resolve({ status: Number(head[':status']), leave: () => session.destroy() }),
    );
  });
}

/** Opens the stream over HTTP/2 (h2c) and reads its first chunk. */
function openHttp2Stream(port: number, path: string): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const session = http2Connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const stream = session.request({ ':path': path, ':authority': HOST });
    let headers: Record<string, unknown> = {};
    stream.on('response', (head) => {
      headers = head;
    });
    stream.on('error', reject);
    stream.once('data', (chunk: Buffer) =>
      resolve({ headers, text: chunk.toString('utf8'), leave: () => session.destroy() }),
    );
  });
}

/**
 * Server-sent events on a route with every policy (the cache and rate-limit stages of a replica, CORS,
 * response headers, retries, idle timeout): each client gets its events as the origin sends them.
 * Regressions: the cache took an event stream for a response to collect and store, so every other
 * client of the URL waited behind the first one's stream (which never ends) for the whole coalescing
 * wait, 10 s, and a client whose If-None-Match named the stream's ETag got nothing at all; the head
 * waited for the first event, and an origin quiet past its idle timeout before it was answered 504.
 */
describe('server-sent events through a caching route', () => {
  let origin: EventOrigin;
  let gateway: TestGateway;
  let port: number;

  beforeAll(async () => {
    origin = await startEventOrigin();
    const logger = createLogger({ service: 'test', level: 'error' });
    const registry = createMetricsRegistry('event-streams', { defaultMetrics: false });
    const cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
      l1MaxBytes: 1_000_000,
      registry,
      logger,
    });
    const limiter = createRateLimiter({ store: new MemoryLimitStore(), registry, logger });
    gateway = await startTestGateway(
      { GATEWAY_H2C: 'true' },
      { stages: [createRateLimitStage(limiter), createCacheStage(cache)] },
    );
    port = gateway.gateway.trafficPort;
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'events',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        {
          origin_id: originId,
          path_pattern: '/*',
          cache_policy: { ttl_seconds: 60 },
          cors: { allow_origins: ['https://app.example'] },
          response_headers: { set: { 'x-served-by': 'gateway' } },
          rate_limit: { requests_per_second: 100, burst: 100, scope: 'ip' },
          retries: { attempts: 3, on: ['reset', '502', '503'], methods: ['GET'] },
          timeouts: { idle_ms: 60_000 },
        },
        { origin_id: originId, path_pattern: '/late/quiet/*', timeouts: { idle_ms: 300 } },
        {
          origin_id: originId,
          path_pattern: '/late/typed/*',
          response_headers: { set: { 'content-type': 'text/event-stream' } },
          timeouts: { idle_ms: 300 },
        },
      ],
    });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it.each([
    ['the origin lets be cached', 'cc=public%2C%20max-age%3D60'],
    ['with no Cache-Control', 'plain'],
  ])('a second HTTP/1.1 client of a stream %s gets its first event at once', async (_, query) => {
    const path = `/events?${query}`;
    const one = await within(openStream(port, path, { origin: 'https://app.example' }), AT_ONCE_MS, 'first');
    const two = await within(openStream(port, path, { origin: 'https://app.example' }), AT_ONCE_MS, 'second');
    expect(one.text).toMatch(/^id: \d+\ndata: first\n\n$/);
    expect(two.text).toMatch(/^id: \d+\ndata: first\n\n$/);
    expect(two.headers['x-served-by']).toBe('gateway');
    expect(two.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(two.headers['x-cache']).toBe('MISS');
    expect(origin.asked.filter((asked) => asked === path)).toHaveLength(2);
    one.leave();
    two.leave();
    // Each client that leaves ends its origin stream (and its cache fill, had one begun).
    await eventually('the origin streams ended', () => !origin.openPaths().includes(path), AT_ONCE_MS);
  });

  it('a second HTTP/2 client of a cacheable stream gets its first event at once', async () => {
    const path = '/events?cc=max-age%3D60&h2';
    const one = await within(openHttp2Stream(port, path), AT_ONCE_MS, 'first');
    const two = await within(openHttp2Stream(port, path), AT_ONCE_MS, 'second');
    expect(two.text).toMatch(/^id: \d+\ndata: first\n\n$/);
    one.leave();
    two.leave();
    await eventually('the origin streams ended', () => !origin.openPaths().includes(path), AT_ONCE_MS);
  });

  it('a stream that ended is never replayed to the next client', async () => {
    const path = '/events?cc=max-age%3D60&ended';
    const one = await send(gateway, HOST, path);
    const two = await send(gateway, HOST, path);
    expect(one.text).toMatch(/^id: \d+\ndata: first\n\n$/);
    expect(two.headers['x-cache']).toBe('MISS');
    expect(two.text).not.toBe(one.text);
  });

  it('a client asking for events goes to the origin while another waits for the head of the same stream', async () => {
    const path = '/late/events?cc=max-age%3D60';
    const accept = { accept: 'text/event-stream' };
    const one = openStream(port, path, accept);
    await eventually('the first request at the origin', () => origin.asked.includes(path));
    const two = openStream(port, path, accept);
    await eventually(
      'the second request at the origin',
      () => origin.asked.filter((asked) => asked === path).length === 2,
      AT_ONCE_MS,
    );
    origin.releaseLate();
    const [first, second] = await within(Promise.all([one, two]), AT_ONCE_MS, 'both streams');
    expect(second.headers['x-cache']).toBe('BYPASS');
    first.leave();
    second.leave();
  });

  /**
   * An origin sends its head at once and its first event when there is one: the client is told the
   * stream is open (EventSource's `open`) as the origin does. Held back until the first event, an origin
   * quiet for longer than its idle timeout was answered 504, after which an EventSource never reconnects.
   */
  it('sends the head of an event stream before its first event, over HTTP/1.1 and HTTP/2', async () => {
    const path = '/late/head?cc=no-cache';
    const head = await within(streamHead(port, path), AT_ONCE_MS, 'HTTP/1.1 head');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(head.headers['x-served-by']).toBe('gateway');
    const http2 = await within(http2StreamHead(port, `${path}&h2`), AT_ONCE_MS, 'HTTP/2 head');
    expect(http2.status).toBe(200);
    head.leave();
    http2.leave();
  });

  it('answers an event stream silent past idle_ms before its first event 200, then ends it', async () => {
    const { status, ended } = await within(
      new Promise<{ status: number; ended: Promise<string> }>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.0.0.1', port, path: '/late/quiet/head', headers: { host: HOST }, agent: false },
          (res) => {
            const ended = new Promise<string>((done) => {
              res.on('error', () => done('cut'));
              res.on('close', () => done(res.complete ? 'complete' : 'cut'));
              res.resume();
            });
            resolve({ status: res.statusCode ?? 0, ended });
          },
        );
        req.on('error', reject);
        req.end();
      }),
      AT_ONCE_MS,
      'head',
    );
    expect(status).toBe(200);
    // Cut, not ended: an EventSource reconnects, as it does when an origin's stream breaks off later.
    expect(await within(ended, AT_ONCE_MS, 'the cut')).toBe('cut');
  });

  it('sends the head at once when the route itself sets the Content-Type of an event stream', async () => {
    const head = await within(streamHead(port, '/late/typed/head'), AT_ONCE_MS, 'HTTP/1.1 head');
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('text/event-stream');
    head.leave();
  });

  it('answers a HEAD request of an event stream with its head alone, over HTTP/1.1 and HTTP/2', async () => {
    const head = await within(
      send(gateway, HOST, '/late/head-request/head', { method: 'HEAD' }),
      AT_ONCE_MS,
      'HEAD',
    );
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(head.text).toBe('');
    const http2 = await within(
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const session = http2Connect(`http://127.0.0.1:${port}`);
        session.on('error', reject);
        const stream = session.request({
          ':method': 'HEAD',
          ':path': '/late/head-request/head?h2',
          ':authority': HOST,
        });
        let status = 0;
        let body = '';
        stream.on('response', (answer) => {
          status = Number(answer[':status']);
        });
        stream.on('data', (chunk: Buffer) => {
          body += chunk.toString('utf8');
        });
        stream.on('end', () => {
          session.close();
          resolve({ status, body });
        });
        stream.on('error', reject);
      }),
      AT_ONCE_MS,
      'HTTP/2 HEAD',
    );
    expect(http2).toEqual({ status: 200, body: '' });
  });

  it("streams to a client whose If-None-Match names the stream's ETag", async () => {
    const path = '/events?cc=max-age%3D60&etag';
    const stream = await within(openStream(port, path, { 'if-none-match': '"stream"' }), AT_ONCE_MS, 'event');
    expect(stream.text).toMatch(/^id: \d+\ndata: first\n\n$/);
    stream.leave();
  });
});

/**
 * Every open stream holds one of its origin target's connections on the replica. Regression: a target's
 * pool had 128 connections, fixed, so a replica served at most 128 streams of one target at once, and
 * each client past them waited for a connection until its response-head timeout, then got 504.
 */
describe('more event streams of one target than its default pool', () => {
  const STREAMS = 150;
  let origin: EventOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startEventOrigin();
    gateway = await startTestGateway({
      GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET: '200',
      GATEWAY_UPSTREAM_CLIENT_SHARE: '0',
    });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'events',
        origins: [{ id: originId, targets: [origin.url], timeout_seconds: 2 }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('serves as many at once as GATEWAY_UPSTREAM_CONNECTIONS_PER_TARGET allows', async () => {
    const port = gateway.gateway.trafficPort;
    const opened = await Promise.allSettled(
      Array.from({ length: STREAMS }, (_, index) => openStream(port, `/many/${index}?cc=no-cache`)),
    );
    const streams = opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    for (const stream of streams) stream.leave();
    expect(streams.filter((stream) => /^id: \d+\ndata: first\n\n$/.test(stream.text))).toHaveLength(STREAMS);
  });
});
