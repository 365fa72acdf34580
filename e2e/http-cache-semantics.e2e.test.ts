import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retriedWhileBypassed, whenCacheServes } from './cache-bypass.js';
import { sleep, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * The response cache as a shared HTTP cache (RFC 9111, RFC 5861), through a real gateway process
 * (`services/gateway/src/main.ts`, Redis, Kafka) in front of a local origin that sets the caching
 * headers. The origin's answer is chosen by the path: `/std/<case>/<n>` on a `standard` route,
 * `/ovr/<case>/<n>` on an `override` route (`<n>` makes each test's URL its own).
 */
const SUBDOMAIN = 'rfccache';
const LAST_MODIFIED = 'Tue, 01 Sep 2026 10:00:00 GMT';

let origin: TestOrigin;
let gateway: LoneGateway;
/** Request headers the origin received, per URL, in order. */
const seen = new Map<string, http.IncomingHttpHeaders[]>();
/** Per URL: what the origin answers next (tests switch it). */
const originState = new Map<string, { version: number; fail?: boolean }>();

function answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = req.url ?? '/';
  const list = seen.get(url) ?? [];
  list.push(req.headers);
  seen.set(url, list);
  const kind = url.split('/')[2] ?? '';
  const state = originState.get(url) ?? { version: 1 };
  const etag = `"v${state.version}"`;
  const body = `${url} v${state.version} #${list.length}`;
  const send = (status: number, headers: Record<string, string>) => {
    res.writeHead(status, { 'content-type': 'text/plain', ...headers });
    res.end(status === 304 ? undefined : body);
  };
  if (state.fail) {
    send(503, { 'cache-control': 'no-store' });
    return true;
  }
  switch (kind) {
    case 'max-age-600':
      send(200, { 'cache-control': 'max-age=600' });
      return true;
    case 's-maxage':
      send(200, { 'cache-control': 'max-age=0, s-maxage=600' });
      return true;
    case 'no-store':
      send(200, { 'cache-control': 'no-store' });
      return true;
    case 'private':
      send(200, { 'cache-control': 'private, max-age=600' });
      return true;
    case 'expired':
      send(200, { expires: 'Thu, 01 Jan 1970 00:00:00 GMT', date: new Date().toUTCString() });
      return true;
    case 'expires':
      send(200, {
        date: new Date().toUTCString(),
        expires: new Date(Date.now() + 600_000).toUTCString(),
      });
      return true;
    case 'found':
      send(302, { location: '/elsewhere' });
      return true;
    case 'found-explicit':
      send(302, { location: '/elsewhere', 'cache-control': 'max-age=600' });
      return true;
    case 'aged':
      send(200, { 'cache-control': 'max-age=600', age: '30' });
      return true;
    case 'etag': {
      // Fresh for 600 s; answers a matching If-None-Match with 304.
      const headers = { 'cache-control': 'max-age=600', etag, 'x-origin-version': String(state.version) };
      if (req.headers['if-none-match'] === etag) send(304, headers);
      else send(200, headers);
      return true;
    }
    case 'no-cache-etag':
      if (req.headers['if-none-match'] === etag) send(304, { 'cache-control': 'no-cache', etag });
      else send(200, { 'cache-control': 'no-cache', etag });
      return true;
    case 'stale-etag': {
      // Already stale when it arrives (Age past max-age); the 304 makes it fresh for 600 s.
      if (req.headers['if-none-match'] === etag)
        send(304, { 'cache-control': 'max-age=600', etag, 'x-refreshed': 'by-304' });
      else send(200, { 'cache-control': 'max-age=1', age: '5', etag });
      return true;
    }
    case 'stale-last-modified':
      if (req.headers['if-modified-since'] === LAST_MODIFIED)
        send(304, { 'cache-control': 'max-age=600', 'last-modified': LAST_MODIFIED });
      else send(200, { 'cache-control': 'max-age=1', age: '5', 'last-modified': LAST_MODIFIED });
      return true;
    case 'stale-usable':
      send(200, { 'cache-control': 'max-age=1, stale-if-error=600', age: '5' });
      return true;
    case 'stale-must-revalidate':
      send(200, { 'cache-control': 'max-age=1, must-revalidate, stale-if-error=600', age: '5' });
      return true;
    case 'plain':
      send(200, {});
      return true;
    default:
      return false;
  }
}

beforeAll(async () => {
  origin = await startOrigin('rfc-origin', answer);
  const originId = randomUUID();
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/std/*',
            cache_policy: { ttl_seconds: 1, cacheable_statuses: [200, 302, 404] },
          },
          {
            origin_id: originId,
            path_pattern: '/ovr/*',
            cache_policy: { mode: 'override', ttl_seconds: 1 },
          },
        ],
      }),
    ],
  });
  await whenCacheServes(gateway, SUBDOMAIN, '/std/plain/warm-up');
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await stopAllServices();
}, 60_000);

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  gateway.request(SUBDOMAIN, path, { headers, method });
const originRequests = (path: string) => seen.get(path)?.length ?? 0;

/** A first request that filled the cache (its origin requests counted afresh if a lookup was bypassed). */
async function fill(path: string, headers: Record<string, string> = {}) {
  const first = await retriedWhileBypassed(
    () => get(path, headers),
    () => seen.delete(path),
  );
  expect(first.status, gateway.service.tail()).toBeLessThan(500);
  expect(first.headers['x-cache']).toBe('MISS');
  return first;
}

describe('RFC 9111 freshness (standard mode, the default)', () => {
  it('the origin’s max-age wins over ttl_seconds in standard mode; override mode forces the TTL', async () => {
    await fill('/std/max-age-600/1');
    await fill('/ovr/max-age-600/1');
    await sleep(1_300); // past the routes' ttl_seconds (1)
    const standard = await get('/std/max-age-600/1');
    const override = await get('/ovr/max-age-600/1');
    expect(standard.headers['x-cache']).toBe('HIT');
    expect(override.headers['x-cache']).toBe('MISS');
    expect(originRequests('/std/max-age-600/1')).toBe(1);
    expect(originRequests('/ovr/max-age-600/1')).toBe(2);
  });

  it('s-maxage beats max-age for a shared cache; Expires − Date gives freshness', async () => {
    await fill('/std/s-maxage/1');
    expect((await get('/std/s-maxage/1')).headers['x-cache']).toBe('HIT');
    await fill('/std/expires/1');
    await sleep(1_300);
    expect((await get('/std/expires/1')).headers['x-cache']).toBe('HIT');
  });

  it('no-store, private and an Expires in the past (no validator) are not stored', async () => {
    for (const path of ['/std/no-store/1', '/std/private/1', '/std/expired/1']) {
      await fill(path);
      await sleep(100); // the fill stores after the body ended
      // A lookup Redis did not answer in time (a loaded machine) is a BYPASS that says nothing of what
      // was stored: ask again. Every answer came from the origin, and none was a HIT.
      let answer = await get(path);
      let gets = 1;
      while (answer.headers['x-cache'] === 'BYPASS' && gets < 5) {
        answer = await get(path);
        gets += 1;
      }
      expect(answer.headers['x-cache'], path).toBe('MISS');
      expect(originRequests(path), path).toBe(1 + gets);
    }
  });

  it('heuristic freshness only for heuristically cacheable statuses: a 302 needs explicit freshness', async () => {
    await fill('/std/plain/heuristic');
    expect((await get('/std/plain/heuristic')).headers['x-cache']).toBe('HIT');
    await fill('/std/found/1');
    await sleep(100);
    expect((await get('/std/found/1')).headers['x-cache']).toBe('MISS');
    await fill('/std/found-explicit/1');
    const explicit = await get('/std/found-explicit/1');
    expect(explicit.status).toBe(302);
    expect(explicit.headers['x-cache']).toBe('HIT');
  });

  it('Age counts the Age the response arrived with', async () => {
    await fill('/std/aged/1');
    const hit = await get('/std/aged/1');
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(Number(hit.headers.age)).toBeGreaterThanOrEqual(30);
    expect(Number(hit.headers.age)).toBeLessThan(40);
  });

  it('HEAD is answered from the stored GET', async () => {
    await fill('/std/max-age-600/head');
    const head = await get('/std/max-age-600/head', {}, 'HEAD');
    expect(head.headers['x-cache']).toBe('HIT');
    expect(head.body).toBe('');
    expect(originRequests('/std/max-age-600/head')).toBe(1);
  });
});

describe('request Cache-Control (standard mode)', () => {
  it('no-cache and max-age=0 revalidate a fresh entry with the origin; the 304 answers them', async () => {
    const path = '/std/etag/reload';
    await fill(path);
    for (const directive of ['no-cache', 'max-age=0']) {
      const reloaded = await get(path, { 'cache-control': directive });
      expect(reloaded.status, directive).toBe(200);
      expect(reloaded.headers['x-cache'], directive).toBe('REVALIDATED');
      expect(reloaded.body).toBe(`${path} v1 #1`);
      expect(seen.get(path)?.at(-1)?.['if-none-match'], directive).toBe('"v1"');
    }
    expect(originRequests(path)).toBe(3);
    expect((await get(path)).headers['x-cache']).toBe('HIT');
  });

  it('min-fresh asks for more freshness than is left: the origin is asked', async () => {
    const path = '/std/etag/min-fresh';
    await fill(path);
    expect((await get(path, { 'cache-control': 'min-fresh=10' })).headers['x-cache']).toBe('HIT');
    expect((await get(path, { 'cache-control': 'min-fresh=6000' })).headers['x-cache']).toBe('REVALIDATED');
  });

  it('max-stale accepts a stale entry without asking the origin, never past must-revalidate', async () => {
    await fill('/std/stale-usable/1');
    const stale = await get('/std/stale-usable/1', { 'cache-control': 'max-stale' });
    expect(stale.headers['x-cache']).toBe('STALE');
    expect(originRequests('/std/stale-usable/1')).toBe(1);
    expect((await get('/std/stale-usable/1', { 'cache-control': 'max-stale=1' })).headers['x-cache']).toBe(
      'MISS',
    );

    await fill('/std/stale-must-revalidate/1');
    const refused = await get('/std/stale-must-revalidate/1', { 'cache-control': 'max-stale' });
    expect(refused.headers['x-cache']).toBe('MISS');
    expect(originRequests('/std/stale-must-revalidate/1')).toBe(2);
  });

  it('only-if-cached: a stored response, else 504 without asking the origin', async () => {
    const missing = await get('/std/max-age-600/only-if-cached', { 'cache-control': 'only-if-cached' });
    expect(missing.status).toBe(504);
    expect(JSON.parse(missing.body)).toMatchObject({ error: { code: 'not_cached' } });
    expect(originRequests('/std/max-age-600/only-if-cached')).toBe(0);
    await fill('/std/max-age-600/only-if-cached');
    const cached = await get('/std/max-age-600/only-if-cached', { 'cache-control': 'only-if-cached' });
    expect(cached.status).toBe(200);
    expect(cached.headers['x-cache']).toBe('HIT');
  });

  it('override mode keeps bypassing on a client’s no-cache', async () => {
    await fill('/ovr/max-age-600/no-cache');
    const bypass = await get('/ovr/max-age-600/no-cache', { 'cache-control': 'no-cache' });
    expect(bypass.headers['x-cache']).toBe('BYPASS');
  });
});

describe('revalidation (RFC 9111 §4.3)', () => {
  it('a stale entry is revalidated with If-None-Match; the 304 updates its headers and freshness', async () => {
    const path = '/std/stale-etag/1';
    await fill(path);
    const revalidated = await get(path);
    expect(revalidated.status).toBe(200);
    expect(revalidated.headers['x-cache']).toBe('REVALIDATED');
    expect(revalidated.body).toBe(`${path} v1 #1`);
    expect(revalidated.headers['x-refreshed']).toBe('by-304');
    expect(revalidated.headers['cache-control']).toBe('max-age=600');
    expect(seen.get(path)?.[1]?.['if-none-match']).toBe('"v1"');

    const hit = await get(path);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.headers['x-refreshed']).toBe('by-304');
    expect(originRequests(path)).toBe(2);
  });

  it('a stale entry with only Last-Modified is revalidated with If-Modified-Since', async () => {
    const path = '/std/stale-last-modified/1';
    await fill(path);
    const revalidated = await get(path);
    expect(revalidated.headers['x-cache']).toBe('REVALIDATED');
    expect(seen.get(path)?.[1]?.['if-modified-since']).toBe(LAST_MODIFIED);
    expect((await get(path)).headers['x-cache']).toBe('HIT');
  });

  it('a changed resource (200 to the conditional request) replaces the entry', async () => {
    const path = '/std/no-cache-etag/1';
    await fill(path);
    originState.set(path, { version: 2 });
    const changed = await get(path);
    expect(changed.headers['x-cache']).toBe('MISS');
    expect(changed.body).toBe(`${path} v2 #2`);
    await sleep(100);
    const confirmed = await get(path);
    expect(confirmed.headers['x-cache']).toBe('REVALIDATED');
    expect(confirmed.body).toBe(`${path} v2 #2`);
    expect(seen.get(path)?.[2]?.['if-none-match']).toBe('"v2"');
  });

  it('a client’s conditional request is answered 304 from a fresh entry, without asking the origin', async () => {
    const path = '/std/etag/conditional';
    await fill(path);
    const matching = await get(path, { 'if-none-match': 'W/"v1", "other"' });
    expect(matching.status).toBe(304);
    expect(matching.body).toBe('');
    expect(matching.headers.etag).toBe('"v1"');
    expect(matching.headers['x-cache']).toBe('HIT');
    const other = await get(path, { 'if-none-match': '"v0"' });
    expect(other.status).toBe(200);
    expect(originRequests(path)).toBe(1);

    const lastModified = '/std/stale-last-modified/conditional';
    await fill(lastModified);
    await get(lastModified); // revalidated: fresh for 600 s now
    const since = await get(lastModified, { 'if-modified-since': LAST_MODIFIED });
    expect(since.status).toBe(304);
    const before = await get(lastModified, { 'if-modified-since': 'Mon, 31 Aug 2026 10:00:00 GMT' });
    expect(before.status).toBe(200);
    // Not an HTTP-date (RFC 9110 §13.1.3: ignored), though Date.parse reads it as the year 3000.
    const notADate = await get(lastModified, { 'if-modified-since': '3000' });
    expect(notADate.status).toBe(200);
  });

  it('a client’s own validators do not leak into the cache’s revalidation; its 304 is answered after ours', async () => {
    const path = '/std/stale-etag/client-conditional';
    await fill(path);
    const answered = await get(path, { 'if-none-match': '"v1"' });
    expect(answered.status).toBe(304);
    expect(answered.headers['x-cache']).toBe('REVALIDATED');
    const stranger = '/std/stale-etag/client-other';
    await fill(stranger);
    const full = await get(stranger, { 'if-none-match': '"elsewhere"' });
    expect(full.status).toBe(200);
    expect(full.headers['x-cache']).toBe('REVALIDATED');
    expect(seen.get(stranger)?.[1]?.['if-none-match']).toBe('"v1"');
  });
});
