import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CachingTestGateway, startCachingGateway } from '../testing/caching-gateways.js';
import { send } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RedisCacheStore } from './redis-cache-store.js';

/**
 * An origin tags responses in whatever language its content is: `Surrogate-Key: café voilà` arrives as
 * UTF-8 bytes, while a purge names the tags by their characters (the admin API's JSON). Purged by
 * those characters, the entries go; a tag of bytes that are no UTF-8 is named one character per byte.
 */
/** As long as a purge's tag may be (256 characters), twice as many bytes in UTF-8. */
const LONG_TAG = 'é'.repeat(256);

describe('cache tags that are not ASCII', () => {
  let origin: HttpOrigin;
  let gateway: CachingTestGateway;
  let redis: TestRedis;
  let tenantId = '';
  let served = 0;
  const subdomain = 'nonasciitags';
  const host = `${subdomain}.localhost`;
  /** The header's bytes: UTF-8 tags (`à` holds the byte 0xA0, a Unicode space read alone), one latin1 tag. */
  const TAG_BYTES = Buffer.concat([
    Buffer.from(`café voilà ${LONG_TAG} `, 'utf8'),
    Buffer.from('été', 'latin1'),
  ]);

  beforeAll(async () => {
    origin = await startHttpOrigin((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      served++;
      res.writeHead(200, [
        'content-type',
        'text/plain',
        'cache-control',
        'max-age=600',
        'surrogate-key',
        TAG_BYTES.toString('latin1'),
      ]);
      res.end(`answer ${served}`);
    });
    redis = createTestRedis('non-ascii-cache-tags');
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/t/*', cache_policy: { ttl_seconds: 600 } }],
    });
    tenantId = snapshot.tenant_id;
    gateway = await startCachingGateway({
      name: 'non-ascii-cache-tags',
      store: new RedisCacheStore(redis.client, { keyPrefix: redis.prefix }),
      snapshot,
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
    await redis?.cleanup();
  });

  it.each([
    ['café', 'café'],
    ['voilà', 'voilà'],
    ['été (latin1 bytes)', 'été'],
    ['é × 256', LONG_TAG],
  ])('purges the entries tagged %s by that tag', async (_label, tag) => {
    const path = `/t/${randomUUID()}`;
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('MISS');
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
    await gateway.cache.purgeTags(tenantId, [tag]);
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('MISS');
  });
});
