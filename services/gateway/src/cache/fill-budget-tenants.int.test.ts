import { randomUUID } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createTestRedis, type TestRedis } from '@vantageedge/shared/testing/redis';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import type { CacheStore } from './cache-store.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { RedisCacheStore } from './redis-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regressions found with a hostile origin:
 * - a fill reserved the whole Content-Length its origin announced, from the one replica-wide budget,
 *   for as long as the body took: one tenant whose origin announced 64 MiB and sent a byte a second
 *   turned caching off (X-Cache: BYPASS) for every tenant of the replica. Fills now reserve bytes as
 *   they arrive, and one tenant's fills hold at most a quarter of the budget.
 * - stale-while-revalidate refreshes buffered their bodies (up to max_body_bytes each) outside the
 *   budget: stale URLs × max_body_bytes was the bound. They now collect through the same budget.
 */
const BUDGET = 4 * 1024 * 1024;
const SHARE = BUDGET / 4;
const MAX_BODY = 64 * 1024 * 1024;

/** Origin responses left open by the test, ended (or cut) by release(). */
const held = new Set<{ res: ServerResponse; finish?: () => void }>();
/** What a background refresh of /swr/* gets: 'held' (64 KiB, then waits) or 'large' (2 × SHARE, at once). */
let refreshBody: 'held' | 'large' = 'held';
let swrRequests = 0;

function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  const url = new URL(req.url ?? '/', 'http://origin');
  if (url.pathname.startsWith('/announce/')) {
    // Announces a large body and sends one byte of it: the rest never comes while the client holds on.
    const length = Number(url.searchParams.get('length'));
    res.writeHead(200, { 'cache-control': 'public, max-age=60', 'content-length': String(length) });
    res.write('a');
    held.add({ res });
    return;
  }
  if (url.pathname.startsWith('/swr/')) {
    swrRequests++;
    const cacheControl = 'public, max-age=1, stale-while-revalidate=600';
    if (swrRequests === 1) {
      res.writeHead(200, { 'cache-control': cacheControl, 'content-type': 'text/plain' });
      res.end('old');
      return;
    }
    res.writeHead(200, { 'cache-control': cacheControl, 'content-type': 'text/plain' });
    if (refreshBody === 'large') {
      res.write(Buffer.alloc(SHARE, 98));
      res.end(Buffer.alloc(SHARE, 98));
      return;
    }
    res.write(Buffer.alloc(64 * 1024, 97));
    held.add({ res, finish: () => res.end('new') });
    return;
  }
  res.writeHead(200, { 'cache-control': 'public, max-age=60', 'content-type': 'text/plain' });
  res.end('victim content');
}

function release(): void {
  for (const { res, finish } of held) {
    if (finish) finish();
    else res.destroy();
  }
  held.clear();
}

async function metric(registry: Registry, name: string): Promise<number> {
  const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.reduce((sum, value) => sum + value.value, 0);
}

/** A request held open by its client; resolves with X-Cache once the gateway sent the response head. */
function holdOpen(gateway: TestGateway, host: string, path: string) {
  let cancel: () => void = () => {};
  const head = new Promise<string | undefined>((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: gateway.gateway.trafficPort, path, headers: { host }, agent: false },
      (res) => {
        res.resume();
        res.on('error', () => {});
        resolve(res.headers['x-cache'] as string | undefined);
      },
    );
    req.on('error', reject);
    req.end();
    cancel = () => req.destroy();
  });
  return { head, cancel: () => cancel() };
}

for (const mode of ['memory', 'redis'] as const) {
  describe(`fill budget across tenants and background refreshes (${mode})`, () => {
    let origin: Server;
    let gateway: TestGateway;
    let cache: ResponseCache;
    let registry: Registry;
    let redis: TestRedis | undefined;
    let clock = Date.now();

    beforeAll(async () => {
      origin = createServer(originHandler);
      await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
      const originUrl = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
      let store: CacheStore;
      if (mode === 'redis') {
        redis = createTestRedis('cache-fill-tenants');
        store = new RedisCacheStore(redis.client, { keyPrefix: redis.prefix });
      } else {
        store = new MemoryCacheStore({ maxBytes: 64_000_000 });
      }
      registry = createMetricsRegistry(`fill-tenants-${mode}`, { defaultMetrics: false });
      cache = createResponseCache({
        store,
        l1MaxBytes: 16_000_000,
        registry,
        logger: createLogger({ service: 'test', level: 'error' }),
        fillBudgetBytes: BUDGET,
        now: () => clock,
      });
      gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
      for (const [subdomain, maxBody] of [
        ['hostile', MAX_BODY],
        ['victim', undefined],
        ['stale', MAX_BODY],
      ] as const) {
        const originId = randomUUID();
        const snapshot = buildSnapshot({
          subdomain,
          origins: [{ id: originId, targets: [originUrl] }],
          routes: [{ origin_id: originId, path_pattern: '/*' }],
        });
        snapshot.routes[0]!.cache_policy = cachePolicy.parse({
          ttl_seconds: 60,
          ...(maxBody === undefined ? {} : { max_body_bytes: maxBody }),
        });
        gateway.store.apply(snapshot);
        await cache.prepareTenant(snapshot.tenant_id);
      }
    });

    afterAll(async () => {
      release();
      await gateway?.close();
      await cache?.close();
      await redis?.cleanup();
      await new Promise<void>((resolve) => {
        origin.close(() => resolve());
        origin.closeAllConnections();
      });
    });

    it("a tenant whose origin announces large bodies and sends nothing does not turn off the other tenants' caching", async () => {
      // The whole budget announced, then a share's worth four times: every response held by its client.
      const clients = [BUDGET, SHARE, SHARE, SHARE, SHARE].map((length) =>
        holdOpen(gateway, 'hostile.localhost', `/announce/${randomUUID()}?length=${length}`),
      );
      try {
        await Promise.all(clients.map((client) => client.head));
        const path = `/page/${randomUUID()}`;
        expect((await send(gateway, 'victim.localhost', path)).headers['x-cache']).toBe('MISS');
        expect((await send(gateway, 'victim.localhost', path)).headers['x-cache']).toBe('HIT');
        // Only bytes that arrived are held, and never more than the tenant's share.
        expect(await metric(registry, 'vantageedge_gateway_cache_fill_bytes')).toBeLessThanOrEqual(SHARE);
      } finally {
        for (const client of clients) client.cancel();
        release();
      }
    });

    it('a stale-while-revalidate refresh holds the bytes it buffers in the fill budget', async () => {
      refreshBody = 'held';
      swrRequests = 0;
      const path = `/swr/held-${randomUUID()}`;
      expect((await send(gateway, 'stale.localhost', path)).text).toBe('old');
      clock += 2_000; // stale, within stale-while-revalidate
      // The refresh has 64 KiB of its body buffered: the budget counts them. (Asked again until the
      // first fill gave its lease across replicas back: only the lease holder refreshes.)
      await vi.waitFor(
        async () => {
          expect((await send(gateway, 'stale.localhost', path)).headers['x-cache']).toBe('STALE');
          expect(await metric(registry, 'vantageedge_gateway_cache_fill_bytes')).toBeGreaterThanOrEqual(
            64 * 1024,
          );
        },
        { timeout: 5_000, interval: 50 },
      );
      release();
      await vi.waitFor(
        async () => {
          const fresh = await send(gateway, 'stale.localhost', path);
          expect(fresh.headers['x-cache']).toBe('HIT');
          expect(fresh.text.endsWith('new')).toBe(true);
        },
        { timeout: 5_000, interval: 20 },
      );
      expect(await metric(registry, 'vantageedge_gateway_cache_fill_bytes')).toBe(0);
    });

    it("a refresh larger than the tenant's share of the budget stops collecting; the stale entry stays", async () => {
      refreshBody = 'large';
      swrRequests = 0;
      const path = `/swr/large-${randomUUID()}`;
      expect((await send(gateway, 'stale.localhost', path)).text).toBe('old');
      clock += 2_000;
      const bypassed = await metric(registry, 'vantageedge_gateway_cache_fill_budget_bypass_total');
      await vi.waitFor(
        async () => {
          expect((await send(gateway, 'stale.localhost', path)).headers['x-cache']).toBe('STALE');
          expect(
            await metric(registry, 'vantageedge_gateway_cache_fill_budget_bypass_total'),
          ).toBeGreaterThan(bypassed);
        },
        { timeout: 5_000, interval: 50 },
      );
      expect(await metric(registry, 'vantageedge_gateway_cache_fill_bytes')).toBe(0);
      const again = await send(gateway, 'stale.localhost', path);
      expect(again.headers['x-cache']).toBe('STALE');
      expect(again.text).toBe('old');
    });
  });
}
