import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retriedWhileBypassed, whenCacheServes } from './cache-bypass.js';
import { sleep, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * A client's own conditional requests (If-None-Match, If-Modified-Since) against the response cache,
 * through a real gateway process in front of an origin that honours them as origins do: a matching
 * validator is answered 304. The origin's answer is chosen by the path: `/std/<case>/<n>`.
 */
const SUBDOMAIN = 'cacheconditionals';
const LAST_MODIFIED = 'Tue, 01 Sep 2026 10:00:00 GMT';
const ORIGIN_DATE = 'Tue, 01 Sep 2026 12:00:00 GMT';

let origin: TestOrigin;
let gateway: LoneGateway;
/** Request headers the origin received, per URL, in order. */
const seen = new Map<string, http.IncomingHttpHeaders[]>();

function answer(req: http.IncomingMessage, res: http.ServerResponse): boolean {
  const url = req.url ?? '/';
  const list = seen.get(url) ?? [];
  list.push(req.headers);
  seen.set(url, list);
  const kind = url.split('/')[2] ?? '';
  const body = `${url} #${list.length}`;
  const send = (headers: Record<string, string>, etag?: string) => {
    const notModified =
      (etag !== undefined && req.headers['if-none-match'] === etag) ||
      (req.headers['if-none-match'] === undefined && req.headers['if-modified-since'] === LAST_MODIFIED);
    res.writeHead(notModified ? 304 : 200, { 'content-type': 'text/plain', ...headers });
    res.end(notModified ? undefined : body);
  };
  switch (kind) {
    case 'validated':
      send(
        {
          'cache-control': 'max-age=600',
          etag: '"v1"',
          'last-modified': LAST_MODIFIED,
          vary: 'Accept-Language',
        },
        '"v1"',
      );
      return true;
    case 'comma-etag':
      send({ 'cache-control': 'max-age=600', etag: '"a,b"' }, '"a,b"');
      return true;
    case 'dated':
      send({ 'cache-control': 'max-age=600', date: ORIGIN_DATE });
      return true;
    case 'ranged':
      answerRanged(req, res, body);
      return true;
    default:
      return false;
  }
}

/**
 * An origin honouring Range (206 of the first bytes asked for), If-Range, If-Match and
 * If-Unmodified-Since (412) as RFC 9110 has it, for a resource with ETag "v1" modified at LAST_MODIFIED.
 */
function answerRanged(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
  const headers = { 'content-type': 'text/plain', 'cache-control': 'max-age=600', etag: '"v1"' };
  const ifMatch = req.headers['if-match'];
  const ifUnmodifiedSince = req.headers['if-unmodified-since'];
  if (
    (ifMatch !== undefined && ifMatch !== '"v1"' && ifMatch !== '*') ||
    (ifMatch === undefined &&
      ifUnmodifiedSince !== undefined &&
      Date.parse(ifUnmodifiedSince) < Date.parse(LAST_MODIFIED))
  ) {
    res.writeHead(412, { 'content-type': 'text/plain' });
    res.end('precondition failed');
    return;
  }
  const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (range && (ifRange === undefined || ifRange === '"v1"')) {
    const [start, end] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
    res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${body.length}` });
    res.end(body.slice(start, end + 1));
    return;
  }
  res.writeHead(200, { ...headers, 'last-modified': LAST_MODIFIED });
  res.end(body);
}

beforeAll(async () => {
  origin = await startOrigin('conditionals-origin', answer);
  const originId = randomUUID();
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/std/*', cache_policy: { ttl_seconds: 60 } }],
      }),
    ],
  });
  await whenCacheServes(gateway, SUBDOMAIN, '/std/validated/warm-up');
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await stopAllServices();
}, 60_000);

const get = (path: string, headers: Record<string, string> = {}, method = 'GET') =>
  gateway.request(SUBDOMAIN, path, { headers, method });
const originRequests = (path: string) => seen.get(path)?.length ?? 0;

/** The first request for `path`, a MISS (its origin requests counted afresh if a lookup was bypassed). */
async function miss(path: string, headers: Record<string, string> = {}) {
  const first = await retriedWhileBypassed(
    () => get(path, headers),
    () => seen.delete(path),
  );
  expect(first.status, gateway.service.tail()).toBeLessThan(500);
  expect(first.headers['x-cache']).toBe('MISS');
  await sleep(100); // the fill stores after the body ended
  return first;
}

describe('a client’s conditional request that misses the cache', () => {
  it('fills the cache from an unconditional origin request and answers the client 304', async () => {
    const path = '/std/validated/miss-if-none-match';
    const answered = await miss(path, { 'if-none-match': '"v1"' });
    expect(answered.status).toBe(304);
    expect(answered.body).toBe('');
    expect(answered.headers.etag).toBe('"v1"');
    expect(answered.headers['content-length']).toBeUndefined();
    expect(seen.get(path)?.[0]?.['if-none-match']).toBeUndefined();
    const next = await get(path);
    expect(next.headers['x-cache']).toBe('HIT');
    expect(next.body).toBe(`${path} #1`);
    expect(originRequests(path)).toBe(1);
  });

  it('does the same for If-Modified-Since, and answers 200 when the client’s copy is not current', async () => {
    const since = '/std/validated/miss-if-modified-since';
    expect((await miss(since, { 'if-modified-since': LAST_MODIFIED })).status).toBe(304);
    expect(seen.get(since)?.[0]?.['if-modified-since']).toBeUndefined();
    expect((await get(since)).headers['x-cache']).toBe('HIT');

    const outdated = '/std/validated/miss-outdated';
    const full = await miss(outdated, { 'if-none-match': '"v0"' });
    expect(full.status).toBe(200);
    expect(full.body).toBe(`${outdated} #1`);
    expect((await get(outdated, { 'if-none-match': '"v1"' })).status).toBe(304);
    expect(originRequests(outdated)).toBe(1);
  });
});

describe('a client’s conditional request answered from a stored entry', () => {
  it('answers 304 with the validators, Cache-Control, Vary and Age but no body or Content-Length; HEAD gets the GET’s length', async () => {
    const path = '/std/validated/hit';
    await miss(path);
    const notModified = await get(path, { 'if-none-match': 'W/"v1"' });
    expect(notModified.status).toBe(304);
    expect(notModified.headers['x-cache']).toBe('HIT');
    expect(notModified.headers).toMatchObject({
      etag: '"v1"',
      'cache-control': 'max-age=600',
      vary: 'Accept-Language',
      'last-modified': LAST_MODIFIED,
    });
    expect(notModified.headers.age).toBeDefined();
    expect(notModified.headers['content-length']).toBeUndefined();
    expect(notModified.headers['content-type']).toBeUndefined();
    // If-None-Match decides when present, whatever If-Modified-Since says (RFC 9110 §13.2.2).
    const both = await get(path, { 'if-none-match': '"other"', 'if-modified-since': LAST_MODIFIED });
    expect(both.status).toBe(200);
    expect((await get(path, { 'if-none-match': '*' })).status).toBe(304);
    const head = await get(path, {}, 'HEAD');
    expect(head.headers['x-cache']).toBe('HIT');
    expect(head.headers['content-length']).toBe(String(Buffer.byteLength(`${path} #1`)));
    expect(originRequests(path)).toBe(1);
  });

  it('matches an entity tag holding a comma', async () => {
    const path = '/std/comma-etag/hit';
    await miss(path);
    const answered = await get(path, { 'if-none-match': '"x", "a,b"' });
    expect(answered.status).toBe(304);
    expect(answered.headers['x-cache']).toBe('HIT');
  });

  it('evaluates If-Modified-Since against the Date of an entry without Last-Modified', async () => {
    const path = '/std/dated/hit';
    await miss(path);
    expect((await get(path, { 'if-modified-since': ORIGIN_DATE })).status).toBe(304);
    expect((await get(path, { 'if-modified-since': LAST_MODIFIED })).status).toBe(200);
    expect(originRequests(path)).toBe(1);
  });
});

describe('a request with Range or preconditions for the origin that misses the cache', () => {
  const forOrigin = ['range', 'if-range', 'if-match', 'if-unmodified-since'];

  it('fills the cache with the whole response, answers the client 200, and the next client a HIT', async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['range', { range: 'bytes=0-3' }],
      ['if-range', { range: 'bytes=0-3', 'if-range': '"v1"' }],
      ['if-match', { 'if-match': '"v0"' }],
      ['if-unmodified-since', { 'if-unmodified-since': 'Mon, 01 Jan 2024 00:00:00 GMT' }],
    ];
    for (const [name, headers] of cases) {
      const path = `/std/ranged/miss-${name}`;
      const first = await miss(path, headers);
      expect(first.status, name).toBe(200);
      expect(first.body, name).toBe(`${path} #1`);
      expect(first.headers['content-range'], name).toBeUndefined();
      for (const field of forOrigin)
        expect(seen.get(path)?.[0]?.[field], `${name}: ${field}`).toBeUndefined();
      const next = await get(path);
      expect(next.headers['x-cache'], name).toBe('HIT');
      expect(next.status, name).toBe(200);
      expect(next.body, name).toBe(`${path} #1`);
      expect(originRequests(path), name).toBe(1);
    }
  });

  it('keeps a follower that asked for the whole response from getting another client’s 206 or 412', async () => {
    for (const headers of [{ range: 'bytes=0-3' }, { 'if-match': '"v0"' }]) {
      const path = `/std/ranged/collapsed-${Object.keys(headers)[0]}`;
      const [leader, follower] = await Promise.all([get(path, headers), get(path)]);
      for (const answered of [leader, follower]) {
        expect(answered.status, gateway.service.tail()).toBe(200);
        expect(answered.body.startsWith(path)).toBe(true);
      }
    }
  });
});
