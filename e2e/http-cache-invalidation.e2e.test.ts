import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whenCacheServes } from './cache-bypass.js';
import { eventually, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Invalidation by unsafe methods (RFC 9111 §4.4) and `immutable` (RFC 8246), through a real gateway
 * process (`services/gateway/src/main.ts`, Redis, Kafka) in front of a local origin. The origin answers
 * a GET fresh for 600 s with a counter in the body; an unsafe method is answered with the status and
 * the Location / Content-Location the test asks for (request headers `x-status`, `x-location`,
 * `x-content-location`), so each test decides what the response names.
 */
const SUBDOMAIN = 'cinval';
const NEIGHBOUR = 'cinval-neighbour';

let origin: TestOrigin;
let gateway: LoneGateway;
/** Origin requests per method and URL ("GET /orders/7"). */
const originRequests = new Map<string, number>();

function answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = req.url ?? '/';
  const count = (originRequests.get(`${req.method} ${url}`) ?? 0) + 1;
  originRequests.set(`${req.method} ${url}`, count);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const headers: Record<string, string> = { 'content-type': 'text/plain' };
    const location = req.headers['x-location'];
    const contentLocation = req.headers['x-content-location'];
    if (typeof location === 'string') headers.location = location;
    if (typeof contentLocation === 'string') headers['content-location'] = contentLocation;
    res.writeHead(Number(req.headers['x-status'] ?? 201), headers);
    res.end('done');
    return true;
  }
  const etag = '"v1"';
  const cacheControl = url.startsWith('/immutable/') ? 'max-age=600, immutable' : 'max-age=600';
  const headers = { 'content-type': 'text/plain', 'cache-control': cacheControl, etag };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
  } else {
    res.writeHead(200, headers);
    res.end(`${url} #${count}`);
  }
  return true;
}

beforeAll(async () => {
  origin = await startOrigin('cinval-origin', answer);
  const snapshot = (subdomain: string) => {
    const originId = randomUUID();
    const cached = { ttl_seconds: 600 };
    return buildSnapshot({
      subdomain,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/orders', cache_policy: cached },
        { origin_id: originId, path_pattern: '/orders/*', cache_policy: cached },
        { origin_id: originId, path_pattern: '/catalog/*', cache_policy: cached },
        { origin_id: originId, path_pattern: '/immutable/*', cache_policy: cached },
        { origin_id: originId, path_pattern: '/mutable/*', cache_policy: cached },
      ],
    });
  };
  gateway = await startLoneGateway({ snapshots: [snapshot(SUBDOMAIN), snapshot(NEIGHBOUR)] });
  for (const subdomain of [SUBDOMAIN, NEIGHBOUR])
    await whenCacheServes(gateway, subdomain, '/orders/warm-up');
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await stopAllServices();
}, 60_000);

const request = (path: string, options: { method?: string; headers?: Record<string, string> } = {}) =>
  gateway.request(SUBDOMAIN, path, options);

/** A GET that filled the cache, then one answered from it. */
async function cached(path: string, subdomain = SUBDOMAIN) {
  const first = await gateway.request(subdomain, path);
  expect(first.status, gateway.service.tail()).toBe(200);
  expect(first.headers['x-cache']).toBe('MISS');
  await eventually('the entry is stored', async () => {
    const again = await gateway.request(subdomain, path);
    return again.headers['x-cache'] === 'HIT';
  });
}

async function post(headers: Record<string, string>, path = '/orders') {
  const response = await request(path, { method: 'POST', headers });
  expect(response.status, gateway.service.tail()).toBe(Number(headers['x-status'] ?? 201));
  return response;
}

/** The gateway drops entries after the response is finished: a drop shows once the next GET misses. */
async function dropped(path: string, subdomain = SUBDOMAIN): Promise<boolean> {
  const response = await gateway.request(subdomain, path);
  return response.headers['x-cache'] === 'MISS';
}

describe('unsafe methods invalidate the URIs in Location and Content-Location (RFC 9111 §4.4)', () => {
  // Regression tests: only the request's own path was invalidated, so a POST answered 201 with
  // `Location: /orders/7` left the cached GET /orders/7 to be served (HIT) with the old state.
  it('a POST answered 201 with Location: /orders/7 drops the cached GET /orders/7', async () => {
    await cached('/orders/7');
    await post({ 'x-location': '/orders/7' });
    await eventually('GET /orders/7 is a MISS', () => dropped('/orders/7'));
    expect(originRequests.get('GET /orders/7')).toBe(2);
  });

  // Regression test: the GET sent right after the POST's answer read the replaced entry from Redis while
  // the invalidation was still deleting it there (HIT with the old body, kept in the replica's memory).
  it('the GET a client sends right after its POST was answered is a MISS (read-your-writes)', async () => {
    await cached('/orders/15');
    await post({ 'x-location': '/orders/15' });
    const next = await request('/orders/15');
    expect(next.headers['x-cache']).toBe('MISS');
    expect(next.body).toBe('/orders/15 #2');
  });

  it('Content-Location drops its entry too, also on another route of the tenant and as an absolute URI', async () => {
    await cached('/orders/9');
    await post({ 'x-content-location': '/orders/9' });
    await eventually('GET /orders/9 is a MISS', () => dropped('/orders/9'));

    await cached('/catalog/3');
    await post({ 'x-location': `http://${SUBDOMAIN}.localhost/catalog/3` });
    await eventually('GET /catalog/3 is a MISS', () => dropped('/catalog/3'));
  });

  it('a relative reference is resolved against the request URI and normalised like a request path', async () => {
    await cached('/orders/12');
    // Resolved against /orders/5: "./12" is /orders/12.
    await post({ 'x-location': './12' }, '/orders/5');
    await eventually('GET /orders/12 is a MISS', () => dropped('/orders/12'));

    await cached('/orders/13');
    await post({ 'x-location': '/catalog/../orders//13' });
    await eventually('GET /orders/13 is a MISS', () => dropped('/orders/13'));
  });

  it('a Location naming another host, an unparseable one or an error response drops nothing', async () => {
    await cached('/orders/8');
    await cached('/orders/8', NEIGHBOUR);
    await post({ 'x-location': `http://${NEIGHBOUR}.localhost/orders/8` });
    await post({ 'x-content-location': 'http://elsewhere.example/orders/8' });
    await post({ 'x-location': 'http://[not a host/orders/8' });
    await post({ 'x-location': '/orders/8', 'x-status': '409' });
    await post({ 'x-status': '409' }, '/orders/8'); // an error does not invalidate the target URI either
    // A later invalidation of another URI is seen first: the ones above (if any) were applied before it.
    await cached('/orders/marker');
    await post({ 'x-location': '/orders/marker' });
    await eventually('GET /orders/marker is a MISS', () => dropped('/orders/marker'));
    expect((await request('/orders/8')).headers['x-cache']).toBe('HIT');
    expect((await gateway.request(NEIGHBOUR, '/orders/8')).headers['x-cache']).toBe('HIT');
    expect(originRequests.get('GET /orders/8')).toBe(2); // one fill per tenant
  });

  // Regression test: only POST, PUT, PATCH and DELETE invalidated; other unsafe methods (WebDAV's
  // PROPPATCH, MKCOL, …) left the changed resource's stored responses to be served.
  it('any method not known to be safe invalidates, like POST', async () => {
    await cached('/orders/14');
    const response = await request('/orders/14', { method: 'PROPPATCH', headers: { 'x-status': '207' } });
    expect(response.status, gateway.service.tail()).toBe(207);
    await eventually('GET /orders/14 is a MISS', () => dropped('/orders/14'));
  });
});

describe('immutable (RFC 8246)', () => {
  it('a fresh immutable entry is served from the cache on a reload; without immutable the reload revalidates', async () => {
    const reloads = [
      { 'cache-control': 'no-cache' },
      { 'cache-control': 'max-age=0' },
      { pragma: 'no-cache' },
    ];
    await cached('/immutable/1');
    await cached('/mutable/1');
    for (const headers of reloads) {
      const immutable = await request('/immutable/1', { headers });
      expect(immutable.headers['x-cache'], JSON.stringify(headers)).toBe('HIT');
      const mutable = await request('/mutable/1', { headers });
      expect(mutable.headers['x-cache'], JSON.stringify(headers)).toBe('REVALIDATED');
    }
    expect(originRequests.get('GET /immutable/1')).toBe(1);
    expect(originRequests.get('GET /mutable/1')).toBe(1 + reloads.length);
  });
});
