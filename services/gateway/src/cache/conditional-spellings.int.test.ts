import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CachingTestGateway, startCachingGateway } from '../testing/caching-gateways.js';
import { send } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { MemoryCacheStore } from './memory-cache-store.js';

/**
 * A request the cache sends for itself (a MISS that fills the entry every client gets, a revalidation,
 * a background refresh) carries none of the client's conditional or range fields in any spelling a
 * CGI-style origin reads as them (`If_None_Match`, PHP's `If.None.Match`). Regression: only the `-`
 * spelling was removed, so such an origin answered the client's condition (304, 412) to a request that
 * needs the whole response, and a revalidation's 304 to the client's validator kept a changed entry.
 */
const HOST = 'spellings.localhost';
const CLIENT_TAG = '"client-copy"';
/** What CGI-style origins (PHP, Rack, WSGI) read a request field's name as. */
const asRead = (name: string) => name.toLowerCase().replace(/[_.]/g, '-');
const CONDITIONAL_FIELDS = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-range', 'range']);

let origin: Server;
let gateway: CachingTestGateway;
let clock = Date.now();
/** Per path, what the origin was sent and what it answered, in order. */
const seen = new Map<string, Array<{ headers: IncomingHttpHeaders; status: number }>>();

/** The request's values of `field` as a CGI-style origin reads them (every spelling). */
function readAs(headers: IncomingHttpHeaders, field: string): string[] {
  return Object.entries(headers)
    .filter(([name, value]) => asRead(name) === field && value !== undefined)
    .map(([, value]) => String(value));
}

beforeAll(async () => {
  origin = createServer((req, res) => {
    const path = req.url!;
    const exchanges = seen.get(path) ?? [];
    seen.set(path, exchanges);
    // The content changes with every full answer: v1, v2, …
    const version = `v${exchanges.filter((exchange) => exchange.status === 200).length + 1}`;
    const current = `"${version}"`;
    const answer = (status: number, headers: Record<string, string>, body = '') => {
      exchanges.push({ headers: req.headers, status });
      res.writeHead(status, headers);
      res.end(body);
    };
    const validators = path.startsWith('/validated/')
      ? { etag: current, 'cache-control': 'max-age=1' }
      : { 'cache-control': 'max-age=1, stale-while-revalidate=600' };
    if (readAs(req.headers, 'if-match').some((tag) => tag !== current)) return answer(412, {});
    // This origin takes the client's copy for the current one (a PHP app's `$_SERVER` holds one value).
    if (readAs(req.headers, 'if-none-match').some((tag) => tag === CLIENT_TAG || tag === current))
      return answer(304, { etag: CLIENT_TAG, 'cache-control': 'max-age=60' });
    answer(200, { 'content-type': 'text/plain', ...validators }, version);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'spellings',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [{ origin_id: originId, path_pattern: '/*', cache_policy: { mode: 'standard' } }],
  });
  gateway = await startCachingGateway({
    name: 'conditional-spellings',
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    snapshot,
    now: () => clock,
  });
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

const get = (path: string, headers: Record<string, string> = {}) => send(gateway, HOST, path, { headers });

/** The client's condition in the spellings CGI-style origins read as If-None-Match and If-Match. */
const SPELLED = { If_None_Match: CLIENT_TAG, 'If.Match': '"other"', If_Range: '"other"' };

/** The conditional fields, by the names the origin got them under, of its `index`th request for `path`. */
function conditionalsSent(path: string, index: number): string[] {
  const headers = seen.get(path)?.[index]?.headers ?? {};
  return Object.keys(headers).filter((name) => CONDITIONAL_FIELDS.has(asRead(name)));
}

async function originRequests(path: string, count: number): Promise<void> {
  while ((seen.get(path)?.length ?? 0) < count) await new Promise((resolve) => setTimeout(resolve, 10));
}

describe('the cache’s own requests to an origin reading `_` and `.` as `-`', () => {
  it('a MISS filling the entry is sent without the client’s conditions in any spelling', async () => {
    const path = `/fill/${randomUUID()}`;
    const miss = await get(path, SPELLED);
    expect(miss.headers['x-cache']).toBe('MISS');
    expect(miss.status).toBe(200);
    expect(conditionalsSent(path, 0)).toEqual([]);
    const hit = await get(path);
    expect(hit.headers['x-cache']).toBe('HIT');
    expect(hit.text).toBe('v1');
  });

  it('a background refresh is sent without them, and stores the origin’s whole answer', async () => {
    const path = `/refresh/${randomUUID()}`;
    expect((await get(path)).text).toBe('v1');
    clock += 2_000;
    const stale = await get(path, SPELLED);
    expect(stale.headers['x-cache']).toBe('STALE');
    await originRequests(path, 2);
    expect(conditionalsSent(path, 1)).toEqual([]);
    expect(seen.get(path)?.[1]?.status).toBe(200);
  });

  it('a revalidation is sent with the entry’s validator alone: a changed response replaces the entry', async () => {
    const path = `/validated/${randomUUID()}`;
    expect((await get(path)).text).toBe('v1');
    clock += 2_000;
    // The origin changed meanwhile (v2): only the client's copy would be answered 304.
    const revalidated = await get(path, SPELLED);
    expect(conditionalsSent(path, 1)).toEqual(['if-none-match']);
    expect(revalidated.text).toBe('v2');
    expect((await get(path)).text).toBe('v2');
  });
});
