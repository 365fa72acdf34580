import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { createResponseCache } from '../cache/response-cache.js';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression: HTTP/2 forbids connection-specific header fields (RFC 9113 §8.2.2), and node throws when
 * a response to an HTTP/2 client carries one. A route stored with one (fixed_response, response_headers)
 * or an origin sending HTTP2-Settings (proxied, or stored by the cache from an HTTP/1.1 request and
 * served as a HIT) made writeHead throw, the error answer throw again out of the request listener, and
 * the replica exit (every tenant down) or the HTTP/2 client hang. They are dropped; the bystander tenant
 * is served throughout.
 */
const HOST = 'h2conn.localhost';
const BYSTANDER = 'h2bystander.localhost';

let gateway: TestGateway;
let origin: TestOrigin;
let settingsOrigin: Server;
let repeatingOrigin: Server;
let session: ClientHttp2Session;

function h2(pathname: string, authority = HOST) {
  return http2Request(session, { path: pathname, authority, timeoutMs: 3_000 });
}

beforeAll(async () => {
  origin = await startTestOrigin('h2conn-origin');
  // An origin (HTTP/1.1, as every origin) that sends a header only meaningful to an HTTP/1.1 upgrade.
  settingsOrigin = createServer((req, res) => {
    req.resume();
    res.writeHead(200, {
      'content-type': 'text/plain',
      'cache-control': 'public, max-age=60',
      'http2-settings': 'AAMAAABk',
    });
    res.end('from origin');
  });
  await new Promise<void>((resolve) => settingsOrigin.listen(0, '127.0.0.1', resolve));
  const settingsUrl = `http://127.0.0.1:${(settingsOrigin.address() as AddressInfo).port}`;
  // An origin repeating lines of fields HTTP/2 carries once (node sends each array item as a line).
  repeatingOrigin = createServer((req, res) => {
    req.resume();
    res.setHeader('date', ['Tue, 01 Dec 2026 10:00:00 GMT', 'Tue, 01 Dec 2026 10:00:01 GMT']);
    res.setHeader('etag', ['"v1"', '"v2"']);
    res.setHeader('content-type', ['text/plain', 'text/html']);
    res.setHeader('cache-control', 'public, max-age=60');
    res.end('repeated');
  });
  await new Promise<void>((resolve) => repeatingOrigin.listen(0, '127.0.0.1', resolve));
  const repeatingUrl = `http://127.0.0.1:${(repeatingOrigin.address() as AddressInfo).port}`;
  const logger = createLogger({ service: 'h2-connection-headers-test', level: 'error' });
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: new Registry(),
    logger,
  });
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const settingsId = randomUUID();
  const repeatingId = randomUUID();
  // Stored as a route recorded before commands refused these headers would be.
  const snapshot = buildSnapshot({
    subdomain: 'h2conn',
    origins: [
      { id: originId, targets: [origin.url] },
      { id: settingsId, targets: [settingsUrl] },
      { id: repeatingId, targets: [repeatingUrl] },
    ],
    routes: [
      {
        origin_id: null,
        path_pattern: '/fixed/keep-alive',
        fixed_response: {
          status: 503,
          headers: { 'keep-alive': 'timeout=5', 'retry-after': '60' },
          body: 'down',
        },
      },
      {
        origin_id: null,
        path_pattern: '/fixed/upgrade',
        fixed_response: { status: 200, headers: { upgrade: 'h2c' }, body: 'hi' },
      },
      {
        origin_id: null,
        path_pattern: '/fixed/reset',
        fixed_response: { status: 205, body: 'content a 205 never has' },
      },
      {
        origin_id: null,
        path_pattern: '/fixed/te',
        fixed_response: { status: 200, headers: { te: 'gzip' }, body: 'hi' },
      },
      {
        origin_id: originId,
        path_pattern: '/set-te/*',
        response_headers: { set: { te: 'gzip', 'x-kept': 'yes' } },
      },
      {
        origin_id: originId,
        path_pattern: '/set-h2s/*',
        response_headers: { set: { 'http2-settings': 'AAAA' } },
      },
      { origin_id: settingsId, path_pattern: '/origin-h2s/*' },
      { origin_id: settingsId, path_pattern: '/cached/*' },
      { origin_id: repeatingId, path_pattern: '/repeated/*' },
      { origin_id: repeatingId, path_pattern: '/repeated-cached/*' },
    ] as never,
  });
  snapshot.routes[7]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
  snapshot.routes[9]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60 });
  gateway.store.apply(snapshot);
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2bystander',
      origins: [],
      routes: [
        { origin_id: null, path_pattern: '/ok', fixed_response: { status: 200, body: 'bystander ok' } },
      ] as never,
    }),
  );
  await cache.prepareTenant(snapshot.tenant_id);
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await origin?.close();
  settingsOrigin?.close();
  repeatingOrigin?.close();
});

describe('connection-specific response headers and HTTP/2 clients', () => {
  it('a fixed_response stored with keep-alive, upgrade or te answers HTTP/2 without them', async () => {
    const down = await h2('/fixed/keep-alive');
    expect(down.status).toBe(503);
    expect(down.body).toBe('down');
    expect(down.headers['retry-after']).toBe('60');
    expect(down.headers['keep-alive']).toBeUndefined();
    for (const pathname of ['/fixed/upgrade', '/fixed/te']) {
      const answer = await h2(pathname);
      expect(answer.status, pathname).toBe(200);
      expect(answer.body, pathname).toBe('hi');
      expect(answer.headers['upgrade'] ?? answer.headers['te'], pathname).toBeUndefined();
    }
    expect((await h2('/ok', BYSTANDER)).body).toBe('bystander ok');
  });

  it('a fixed_response stored as a 205 with a body answers HTTP/2 without it (the stream was reset)', async () => {
    const reset = await h2('/fixed/reset');
    expect(reset.status).toBe(205);
    expect(reset.body).toBe('');
  });

  it('response_headers stored with te or http2-settings answer HTTP/2 (no hang), the other writes kept', async () => {
    const te = await h2('/set-te/a');
    expect(te.status).toBe(200);
    expect(te.headers['te']).toBeUndefined();
    expect(te.headers['x-kept']).toBe('yes');
    const settings = await h2('/set-h2s/a');
    expect(settings.status).toBe(200);
    expect(settings.headers['http2-settings']).toBeUndefined();
  });

  it('an origin’s HTTP2-Settings is hop-by-hop: dropped for HTTP/1.1 and HTTP/2 clients', async () => {
    const h1 = await send(gateway, HOST, '/origin-h2s/a');
    expect(h1.status).toBe(200);
    expect(h1.headers['http2-settings']).toBeUndefined();
    const answer = await h2('/origin-h2s/a');
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('from origin');
    expect(answer.headers['http2-settings']).toBeUndefined();
  });

  it('a response an HTTP/1.1 request stored in the cache is an HTTP/2 HIT, and the replica serves on', async () => {
    const fill = await send(gateway, HOST, '/cached/a');
    expect(fill.status).toBe(200);
    const hit = await h2('/cached/a');
    expect(hit.status).toBe(200);
    expect(hit.body).toBe('from origin');
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['http2-settings']).toBeUndefined();
    expect((await h2('/ok', BYSTANDER)).body).toBe('bystander ok');
    expect((await send(gateway, BYSTANDER, '/ok')).text).toBe('bystander ok');
  });

  it('an origin repeating a field HTTP/2 carries once (Date, ETag, Content-Type) is answered as an HTTP/1.1 client reads it, proxied and as a HIT', async () => {
    for (let i = 0; i < 3; i++) {
      const proxied = await h2(`/repeated/${i}`);
      expect(proxied.status).toBe(200);
      expect(proxied.body).toBe('repeated');
      // node:http keeps the first ETag and joins the Date lines (as browsers do); Content-Type is the
      // type a browser reads of the lines (the last valid one).
      expect(proxied.headers['etag']).toBe('"v1"');
      expect(proxied.headers['date']).toBe('Tue, 01 Dec 2026 10:00:00 GMT, Tue, 01 Dec 2026 10:00:01 GMT');
      expect(proxied.headers['content-type']).toBe('text/html');
    }
    // Stored by an HTTP/1.1 client's MISS, served to HTTP/2 clients as a HIT.
    expect((await send(gateway, HOST, '/repeated-cached/a')).status).toBe(200);
    const hit = await h2('/repeated-cached/a');
    expect(hit.status).toBe(200);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.body).toBe('repeated');
    expect(hit.headers['etag']).toBe('"v1"');
  });
});
