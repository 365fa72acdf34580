import { randomUUID } from 'node:crypto';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { whenCacheServes } from './cache-bypass.js';
import { eventually, sleep, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Regression test: an origin that sent two Cache-Control lines on a cached route made the response
 * cache call toLowerCase() on an array inside a fire-and-forget promise; the rejection was unhandled
 * and the gateway process exited, taking every tenant on the replica down. The replica is a real
 * process here, so "it stays up" means the OS process is still there and still answering.
 */
const SUBDOMAIN = 'dupheaders';

let origin: TestOrigin;
let gateway: LoneGateway;

beforeAll(async () => {
  origin = await startOrigin('dup-origin', (req, res) => {
    const url = req.url ?? '/';
    if (!url.startsWith('/cached/')) return false;
    const lines = url.includes('no-store')
      ? ['public, max-age=60', 'no-store']
      : url.includes('vary-star')
        ? undefined
        : ['public, max-age=60', 'must-revalidate'];
    const headers: Record<string, string | string[]> = { 'content-type': 'text/plain' };
    if (lines) headers['cache-control'] = lines;
    if (url.includes('vary-star')) headers['vary'] = ['accept-encoding', '*'];
    res.writeHead(200, headers);
    res.end(`body of ${url}`);
    return true;
  });
  const originId = randomUUID();
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/cached/*', cache_policy: { ttl_seconds: 60 } },
          { origin_id: originId, path_pattern: '/plain/*' },
        ],
      }),
    ],
  });
  await whenCacheServes(gateway, SUBDOMAIN, '/cached/warm-up');
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await stopAllServices();
}, 60_000);

describe('origin responses with repeated header lines on a cached route', () => {
  it('two Cache-Control lines: the client gets the response, the replica stays up and caches it', async () => {
    const first = await gateway.request(SUBDOMAIN, '/cached/two-lines');
    expect(first.status, gateway.service.tail()).toBe(200);
    expect(first.body).toBe('body of /cached/two-lines');
    expect(first.headers['x-cache'], gateway.service.tail()).not.toBe('HIT');

    // The store runs after the body ended; give a crash the time it needed on the old code.
    await sleep(300);
    const other = await gateway.request(SUBDOMAIN, '/plain/after');
    expect(other.status, gateway.service.tail()).toBe(200);
    expect(gateway.service.exited(), gateway.service.tail()).toBe(false);

    // The two lines are one list ("public, max-age=60, must-revalidate"): storable. (Retried: on a
    // loaded machine a Redis timeout can make a lookup BYPASS.)
    await eventually(
      'the response is served from the cache',
      async () => (await gateway.request(SUBDOMAIN, '/cached/two-lines')).headers['x-cache'] === 'HIT',
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(gateway.service.exited(), gateway.service.tail()).toBe(false);
  });

  it('no-store on the second line is honoured, and Vary: * on a second line prevents storing', async () => {
    for (const path of ['/cached/no-store', '/cached/vary-star']) {
      for (let round = 0; round < 2; round += 1) {
        const response = await gateway.request(SUBDOMAIN, path);
        expect(response.status, gateway.service.tail()).toBe(200);
        expect(response.headers['x-cache']).not.toBe('HIT');
        await sleep(100);
      }
      expect(origin.hits.get(path)).toBe(2);
    }
    expect(gateway.service.exited(), gateway.service.tail()).toBe(false);
  });
});
