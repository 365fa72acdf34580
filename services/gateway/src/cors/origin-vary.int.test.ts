import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryCacheStore } from '../cache/memory-cache-store.js';
import { type CachingTestGateway, startCachingGateway } from '../testing/caching-gateways.js';
import { send } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A CORS route's key holds Origin as its policy reads it (every Origin of `*` alike), but an origin whose
 * answer says `Vary: Origin` built it from the request's Origin: that answer is kept per Origin as sent.
 * Regression: the variant its Vary selected read Origin as the key does, so whichever client filled the
 * entry (any client can send any Origin) had its answer served, readable (`Access-Control-Allow-Origin:
 * *`), to every other site's browsers.
 */
const HOST = 'origin-vary.localhost';

let origin: Server;
/** Full answers (200) of the revalidated path: every other answer is a 304. */
let revalidatedFull = 0;
let gateway: CachingTestGateway;

beforeAll(async () => {
  // Builds its answer from the Origin, and says so.
  origin = createServer((req, res) => {
    req.resume();
    // Varies on Accept-Encoding alone, stale at once: every request after the first revalidates. Its 304
    // carries no Vary (the stored one stands).
    if (req.url!.startsWith('/open/revalidated/')) {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'public, max-age=0' });
        res.end();
        return;
      }
      revalidatedFull += 1;
      const headers = { etag: '"v1"', vary: 'Accept-Encoding', 'cache-control': 'public, max-age=0' };
      res.writeHead(200, { 'content-type': 'text/plain', ...headers });
      res.end('same for every site');
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/plain',
      vary: 'Origin',
      'cache-control': 'public, max-age=60',
    });
    res.end(`embedded for ${req.headers.origin ?? 'none'}`);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'origin-vary',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [
      {
        origin_id: originId,
        path_pattern: '/open/*',
        cors: { allow_origins: ['*'] },
        cache_policy: { ttl_seconds: 60 },
      },
      {
        origin_id: originId,
        path_pattern: '/listed/*',
        cors: { allow_origins: ['https://app.example.com'] },
        cache_policy: { ttl_seconds: 60 },
      },
    ],
  });
  gateway = await startCachingGateway({
    name: 'origin-vary',
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    snapshot,
  });
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

const ask = (path: string, originHeader: string) =>
  send(gateway, HOST, path, { headers: { origin: originHeader } });

describe('an origin saying Vary: Origin on a cached CORS route', () => {
  it('has its answer to one Origin of an allow_origins ["*"] route never served to another', async () => {
    const path = `/open/${randomUUID()}`;
    expect((await ask(path, 'https://evil.example')).text).toBe('embedded for https://evil.example');
    const victim = await ask(path, 'https://shop.example');
    expect(victim.headers['access-control-allow-origin']).toBe('*');
    expect(victim.text).toBe('embedded for https://shop.example');
    const again = await ask(path, 'https://evil.example');
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.text).toBe('embedded for https://evil.example');
  });

  it('has its answer to a listed site, sent in another spelling, kept for that spelling', async () => {
    const path = `/listed/${randomUUID()}`;
    expect((await ask(path, 'HTTPS://APP.EXAMPLE.COM:443')).text).toBe(
      'embedded for HTTPS://APP.EXAMPLE.COM:443',
    );
    const site = await ask(path, 'https://app.example.com');
    expect(site.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(site.text).toBe('embedded for https://app.example.com');
  });

  it('keeps an answer without Vary: Origin one for every Origin of a `*` route, through revalidations too', async () => {
    const path = `/open/revalidated/${randomUUID()}`;
    for (const site of ['https://a.example', 'https://b.example', 'https://c.example', 'https://a.example']) {
      const answer = await ask(path, site);
      expect(answer.text).toBe('same for every site');
      expect(answer.headers['access-control-allow-origin']).toBe('*');
    }
    expect(revalidatedFull).toBe(1);
  });
});
