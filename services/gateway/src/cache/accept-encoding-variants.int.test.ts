import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CachingTestGateway, startCachingGateway } from '../testing/caching-gateways.js';
import { send } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RedisCacheStore } from './redis-cache-store.js';

/**
 * The variants of an encoded response are selected by the content codings a client accepts, not by how
 * it spells its Accept-Encoding: an anonymous client sending `gzip, x1`, `gzip, x2`, … filled a popular
 * URL's variant cap, and every browser request went to the origin until those variants expired.
 */

const TEXT = 'the same document, in whichever coding';

/** The client's q-value for `coding` (RFC 9110 §12.5.3), as an origin that reads weights would. */
function weightOf(acceptEncoding: string, coding: string): number {
  for (const item of acceptEncoding.split(',')) {
    const [name, ...parameters] = item.split(';').map((piece) => piece.trim().toLowerCase());
    if (name !== coding) continue;
    const q = parameters.find((parameter) => parameter.startsWith('q='));
    return q === undefined ? 1 : Number(q.slice(2));
  }
  return 0;
}

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const accepted = String(req.headers['accept-encoding'] ?? '');
  const path = new URL(req.url ?? '/', 'http://origin').pathname;
  const headers = { 'content-type': 'text/plain', 'cache-control': 'max-age=60', vary: 'Accept-Encoding' };
  if (path.startsWith('/negotiating/')) {
    // Prefers br, then gzip, honouring q=0.
    if (weightOf(accepted, 'br') > 0) {
      res.writeHead(200, { ...headers, 'content-encoding': 'br' });
      res.end(brotliCompressSync(TEXT));
    } else if (weightOf(accepted, 'gzip') > 0) {
      res.writeHead(200, { ...headers, 'content-encoding': 'gzip' });
      res.end(gzipSync(TEXT));
    } else {
      res.writeHead(200, headers);
      res.end(TEXT);
    }
    return;
  }
  if (path.startsWith('/careless/')) {
    // Finds `gzip` anywhere in the header, `gzip;q=0` included.
    const gzip = accepted.includes('gzip');
    res.writeHead(200, gzip ? { ...headers, 'content-encoding': 'gzip' } : headers);
    res.end(gzip ? gzipSync(TEXT) : TEXT);
    return;
  }
  if (path.startsWith('/legacy/')) {
    // Prefers deflate, then compress (its body here is only labelled so), as older servers do.
    if (weightOf(accepted, 'deflate') > 0) {
      res.writeHead(200, { ...headers, 'content-encoding': 'deflate' });
      res.end(deflateSync(TEXT));
    } else if (weightOf(accepted, 'compress') > 0 || weightOf(accepted, 'x-compress') > 0) {
      res.writeHead(200, { ...headers, 'content-encoding': 'compress' });
      res.end(`lzw ${TEXT}`);
    } else {
      res.writeHead(200, headers);
      res.end(TEXT);
    }
    return;
  }
  if (path.startsWith('/own-coding/')) {
    // A coding of the origin's own, which only its own clients decode.
    res.writeHead(200, { ...headers, 'content-encoding': 'x-vendor' });
    res.end(`vendor-encoded ${TEXT}`);
    return;
  }
  res.writeHead(404);
  res.end();
}

const BROWSER = 'gzip, deflate, br, zstd';

describe('Accept-Encoding variants (Redis store)', () => {
  let origin: HttpOrigin;
  let gateway: CachingTestGateway;
  let redis: TestRedis;
  const subdomain = 'aevariants';
  const host = `${subdomain}.localhost`;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    redis = createTestRedis('accept-encoding-variants');
    const originId = randomUUID();
    gateway = await startCachingGateway({
      name: 'accept-encoding-variants',
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      maxVariantsPerUrl: 16,
      snapshot: buildSnapshot({
        subdomain,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [{ origin_id: originId, path_pattern: '/*', cache_policy: { ttl_seconds: 60 } }],
      }),
    });
  });
  afterAll(async () => {
    await gateway.close();
    await origin.close();
    await redis.cleanup();
  });

  const get = (path: string, acceptEncoding: string) =>
    send(gateway, host, path, { headers: { 'accept-encoding': acceptEncoding } });

  async function notStored(reason: string): Promise<number> {
    const metric = gateway.cacheRegistry.getSingleMetric('vantageedge_gateway_cache_not_stored_total');
    const values = (await metric?.get())?.values ?? [];
    return values.find((value) => value.labels['reason'] === reason)?.value ?? 0;
  }

  it('regression: junk Accept-Encoding values do not take the variants a browser needs', async () => {
    const path = `/negotiating/${randomUUID()}`;
    for (let i = 0; i < 20; i++) {
      const junk = await get(path, `gzip, x${i}`);
      expect(junk.headers['content-encoding']).toBe('gzip');
    }
    await get(path, BROWSER);
    const browser = await get(path, BROWSER);
    expect(browser.headers['x-cache']).toBe('HIT');
    expect(browser.headers['content-encoding']).toBe('br');
    expect(await notStored('too_many_variants')).toBe(0);
  });

  it('regression: rare but valid sets of codings do not take the variants a browser needs either', async () => {
    const path = `/negotiating/${randomUUID()}`;
    const rare = ['deflate', 'compress', 'identity;q=0', '*;q=0'];
    // Every combination of codings no browser sends, with and without gzip: 32 sets.
    for (let bits = 0; bits < 32; bits++) {
      const codings = rare.filter((_, at) => (bits & (1 << at)) !== 0);
      if ((bits & 16) !== 0) codings.push('gzip');
      await get(path, codings.join(', '));
    }
    await get(path, BROWSER);
    const browser = await get(path, BROWSER);
    expect(browser.headers['x-cache']).toBe('HIT');
    expect(browser.headers['content-encoding']).toBe('br');
    const safari = 'gzip, deflate, br';
    await get(path, safari);
    expect((await get(path, safari)).headers['x-cache']).toBe('HIT');
  });

  it('two spellings of the same accepted codings share one entry', async () => {
    const path = `/negotiating/${randomUUID()}`;
    const first = await get(path, 'gzip, br');
    expect(first.headers['x-cache']).toBe('MISS');
    const second = await get(path, 'br;q=1, gzip, foo');
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.headers['content-encoding']).toBe('br');
    const third = await get(path, 'X-GZIP;q=0.5 , BR');
    expect(third.headers['x-cache']).toBe('HIT');
  });

  it('a client that does not accept the stored coding never gets it', async () => {
    const path = `/negotiating/${randomUUID()}`;
    const gzip = await get(path, 'gzip');
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect((await get(path, 'gzip')).headers['x-cache']).toBe('HIT');
    for (const refusing of ['identity', 'gzip;q=0, br', '*;q=0, identity', 'deflate', '']) {
      const other = await get(path, refusing);
      expect(other.headers['content-encoding'], refusing).not.toBe('gzip');
    }
    const identity = await get(path, 'identity');
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.text).toBe(TEXT);
  });

  it("an origin's coding the client refused is not stored for the clients that refuse it too", async () => {
    const path = `/careless/${randomUUID()}`;
    const before = await notStored('content_encoding_not_accepted');
    const refused = await get(path, 'gzip;q=0');
    expect(refused.headers['content-encoding']).toBe('gzip');
    const identity = await get(path, 'identity');
    expect(identity.headers['content-encoding']).toBeUndefined();
    expect(identity.text).toBe(TEXT);
    expect(await notStored('content_encoding_not_accepted')).toBe(before + 1);
  });

  it('regression: a deflate or compress answer is stored for the clients that accept it, and only for them', async () => {
    const path = `/legacy/${randomUUID()}`;
    const deflate = await get(path, 'gzip, deflate');
    expect(deflate.headers['content-encoding']).toBe('deflate');
    const again = await get(path, 'deflate, gzip');
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.headers['content-encoding']).toBe('deflate');
    for (const refusing of ['gzip', 'gzip, deflate;q=0', 'compress', '']) {
      const other = await get(path, refusing);
      expect(other.headers['content-encoding'], refusing).not.toBe('deflate');
    }
    const compress = await get(path, 'x-compress');
    expect(compress.headers['content-encoding']).toBe('compress');
    expect((await get(path, 'compress')).headers['x-cache']).toBe('HIT');
    expect((await get(path, 'gzip')).headers['content-encoding']).toBeUndefined();
  });

  it('regression: every set of codings a client can send fits below the Vary cap together', async () => {
    const path = `/negotiating/${randomUUID()}`;
    await get(path, BROWSER);
    const codings = ['br', 'gzip', 'zstd', 'deflate', 'compress'];
    for (let bits = 0; bits < 32; bits++)
      await get(path, codings.filter((_, at) => (bits & (1 << at)) !== 0).join(', ') || 'identity');
    const browser = await get(path, BROWSER);
    expect(browser.headers['x-cache']).toBe('HIT');
    expect(browser.headers['content-encoding']).toBe('br');
  });

  it('a response in a coding the gateway does not know is not stored', async () => {
    const path = `/own-coding/${randomUUID()}`;
    const before = await notStored('other_content_encoding');
    for (let i = 0; i < 2; i++) {
      const response = await get(path, 'gzip, x-vendor');
      expect(response.headers['x-cache']).toBe('MISS');
      expect(response.headers['content-encoding']).toBe('x-vendor');
    }
    // Stored, it would reach every client accepting gzip, which cannot decode it.
    const gzipOnly = await get(path, 'gzip');
    expect(gzipOnly.headers['x-cache']).toBe('MISS');
    expect(await notStored('other_content_encoding')).toBe(before + 3);
  });
});
