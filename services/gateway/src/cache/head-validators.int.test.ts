import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import type { CacheStore, ResponseWrite } from './cache-store.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A HEAD the cache sends to the origin whose 200 carries other validators (ETag, Last-Modified) or
 * another Content-Length than the stored GET response makes that response stale (RFC 9111 §4.3.5): the
 * resource changed, and the next GET must not be answered with the former body as fresh.
 */

/** Each path's current version, by what the test set (1 when never set). */
const versions = new Map<string, number>();

/** A HEAD to a `/held-head/` path waits for its release: a slow answer, another replica filling meanwhile. */
const heldHeads = new Map<string, { arrived: () => void; released: Promise<void> }>();

/** The next HEAD of `path` is held at the origin: `atOrigin` once it arrived, answered on `release()`. */
function holdHead(path: string): { atOrigin: Promise<void>; release: () => void } {
  let arrived: () => void = () => {};
  const atOrigin = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  let release: () => void = () => {};
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  heldHeads.set(path, { arrived, released });
  return { atOrigin, release };
}

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const path = new URL(req.url ?? '/', 'http://origin').pathname;
  const held = req.method === 'HEAD' ? heldHeads.get(path) : undefined;
  if (held !== undefined) {
    heldHeads.delete(path);
    held.arrived();
    void held.released.then(() => originHandler(req, res));
    return;
  }
  const version = versions.get(path) ?? 1;
  const body = `version ${version}${'!'.repeat(version)}`;
  const headers: Record<string, string> = {
    'content-type': 'text/plain',
    'cache-control': path.startsWith('/held-head/')
      ? 'max-age=600, stale-while-revalidate=600'
      : 'max-age=600',
    'content-length': String(Buffer.byteLength(body)),
  };
  if (path.startsWith('/etag/') || path.startsWith('/held-head/')) headers['etag'] = `"v${version}"`;
  if (path.startsWith('/modified/'))
    headers['last-modified'] = new Date(Date.UTC(2026, 0, version)).toUTCString();
  if (req.headers['if-none-match'] === headers['etag'] && headers['etag'] !== undefined) {
    res.writeHead(304, { etag: headers['etag'], 'cache-control': 'max-age=600' });
    res.end();
    return;
  }
  res.writeHead(200, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The store as a replica uses it, with a hook that runs just before the next response write is sent:
 * another replica's fill landing between what the replica decided and its write.
 */
function storeWithHookBeforeWrite(inner: RedisCacheStore): {
  store: CacheStore;
  beforeNextWrite: (hook: (write: ResponseWrite) => Promise<void>) => void;
} {
  let hook: ((write: ResponseWrite) => Promise<void>) | null = null;
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === 'putResponse')
        return async (write: ResponseWrite) => {
          const run = hook;
          hook = null;
          if (run) await run(write);
          return target.putResponse(write);
        };
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store,
    beforeNextWrite: (next) => {
      hook = next;
    },
  };
}

describe('a HEAD answered with other validators than the stored GET (two replicas, Redis store)', () => {
  let origin: HttpOrigin;
  let redis: TestRedis;
  const replicas: Array<{ gateway: TestGateway; cache: ResponseCache; client: RedisClient }> = [];
  let gateway: TestGateway;
  /** The first replica's store, read directly. */
  let sharedStore: RedisCacheStore;
  let beforeNextWrite: (hook: (write: ResponseWrite) => Promise<void>) => void;
  const subdomain = 'headvalidators';
  const host = `${subdomain}.localhost`;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    redis = createTestRedis('head-validators');
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain,
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 600 });
    for (let i = 0; i < 2; i++) {
      // Each replica has a connection of its own, as separate processes would.
      const client = createRedisClient({
        url: TEST_INFRA.redisUrl,
        commandTimeoutMs: 2_000,
        name: `head-${i}`,
      });
      await whenReady(client);
      const store = new RedisCacheStore(client, { keyPrefix: redis.prefix });
      const hooked = storeWithHookBeforeWrite(store);
      if (i === 0) {
        sharedStore = store;
        beforeNextWrite = hooked.beforeNextWrite;
      }
      const cache = createResponseCache({
        store: hooked.store,
        l1MaxBytes: 1_000_000,
        registry: createMetricsRegistry(`head-validators-${i}`, { defaultMetrics: false }),
        logger: createLogger({ service: 'test', level: 'error' }),
      });
      const replica = await startTestGateway({}, { stages: [createCacheStage(cache)] });
      replica.store.apply(snapshot);
      await cache.prepareTenant(snapshot.tenant_id);
      replicas.push({ gateway: replica, cache, client });
    }
    gateway = replicas[0]!.gateway;
  });
  afterAll(async () => {
    for (const replica of replicas) {
      await replica.gateway.close();
      await replica.cache.close();
      replica.client.disconnect();
    }
    await origin.close();
    await redis.cleanup();
  });

  /** A HEAD that reaches the origin although the GET response is stored and fresh. */
  const head = (path: string) =>
    send(gateway, host, path, { method: 'HEAD', headers: { 'cache-control': 'no-cache' } });

  /**
   * A path stored at version 1, then changed at the origin: its HEAD is sent, and held at the origin
   * until `release()`.
   */
  const slowHeadOfChangedPath = async () => {
    const path = `/held-head/${randomUUID()}`;
    expect((await send(gateway, host, path)).text).toBe('version 1!');
    versions.set(path, 2);
    const { atOrigin, release } = holdHead(path);
    const slowHead = head(path);
    await atOrigin;
    return { path, slowHead, release };
  };

  for (const kind of ['etag', 'modified', 'length']) {
    it(`regression: the next GET is not answered with the former body (${kind})`, async () => {
      const path = `/${kind}/${randomUUID()}`;
      expect((await send(gateway, host, path)).text).toBe('version 1!');
      expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
      versions.set(path, 2);
      const changed = await head(path);
      expect(changed.status).toBe(200);
      const next = await send(gateway, host, path);
      expect(next.text).toBe('version 2!!');
      expect(next.headers['x-cache']).not.toBe('HIT');
      const after = await send(gateway, host, path);
      expect(after.headers['x-cache']).toBe('HIT');
      expect(after.text).toBe('version 2!!');
    });
  }

  it("regression: another replica's copy of the stored GET goes stale too", async () => {
    const other = replicas[1]!.gateway;
    const path = `/etag/${randomUUID()}`;
    await send(gateway, host, path);
    // Read from the store into the other replica's memory.
    expect((await send(other, host, path)).headers['x-cache']).toBe('HIT');
    versions.set(path, 2);
    await head(path);
    let next = await send(other, host, path);
    // The purge message reaches the other replica through Redis: it may take a moment.
    for (let i = 0; i < 50 && next.text !== 'version 2!!'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      next = await send(other, host, path);
    }
    expect(next.text).toBe('version 2!!');
  });

  it('regression: a slow HEAD never puts back the response it found over one stored meanwhile', async () => {
    const other = replicas[1]!.gateway;
    const { path, slowHead, release } = await slowHeadOfChangedPath();
    // Meanwhile a client of the other replica asks the origin and stores the new version.
    const fetched = await send(other, host, path, { headers: { 'cache-control': 'no-cache' } });
    expect(fetched.text).toBe('version 2!!');
    expect((await send(other, host, path)).headers['x-cache']).toBe('HIT');
    release();
    expect((await slowHead).status).toBe(200);
    // What the HEAD did reaches the other replica through Redis.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const replica of [other, gateway]) {
      const next = await send(replica, host, path);
      expect(next.text).toBe('version 2!!');
    }
  });

  it('regression: the response another replica stores while the mark is on its way is not marked over', async () => {
    const other = replicas[1]!.gateway;
    const { path, slowHead, release } = await slowHeadOfChangedPath();
    let markedKey: string | undefined;
    // The mark's write is about to be sent when the other replica's client gets the new version, and
    // the other replica stores it.
    beforeNextWrite(async (write) => {
      markedKey = write.key;
      const fetched = await send(other, host, path, { headers: { 'cache-control': 'no-cache' } });
      expect(fetched.text).toBe('version 2!!');
      for (let i = 0; i < 100; i++) {
        const stored = await sharedStore.get(write.key);
        if (stored?.kind === 'response' && stored.body.toString() === 'version 2!!') return;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    release();
    expect((await slowHead).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(markedKey).toBeDefined();
    const stored = await sharedStore.get(markedKey!);
    expect(stored?.kind === 'response' && stored.body.toString()).toBe('version 2!!');
    for (const replica of [other, gateway]) {
      const next = await send(replica, host, path);
      expect(next.text).toBe('version 2!!');
      expect(next.headers['x-cache']).toBe('HIT');
    }
  });

  it('regression: a slow HEAD never brings back a response its path dropped meanwhile', async () => {
    const { path, slowHead, release } = await slowHeadOfChangedPath();
    // An unsafe method answered 2xx drops the path's stored responses on every replica.
    const other = replicas[1]!.gateway;
    expect((await send(other, host, path, { method: 'POST', body: 'x' })).status).toBe(200);
    // The drop reaches the store after the POST's answer.
    const cached = () => send(other, host, path, { headers: { 'cache-control': 'only-if-cached' } });
    for (let i = 0; i < 50 && (await cached()).status !== 504; i++)
      await new Promise((resolve) => setTimeout(resolve, 20));
    expect((await cached()).status).toBe(504);
    release();
    expect((await slowHead).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect((await send(gateway, host, path)).text).toBe('version 2!!');
  });

  it('a HEAD whose validators match leaves the stored response fresh', async () => {
    const path = `/etag/${randomUUID()}`;
    await send(gateway, host, path);
    const same = await send(gateway, host, path, {
      method: 'HEAD',
      headers: { 'cache-control': 'max-age=0' },
    });
    expect(same.status).toBe(200);
    const next = await send(gateway, host, path);
    expect(next.headers['x-cache']).toBe('HIT');
    expect(next.text).toBe('version 1!');
  });
});
