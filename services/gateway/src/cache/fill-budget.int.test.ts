import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * Regression: every in-flight cache fill buffered up to the policy's max_body_bytes with no limit on
 * how many run at once, so unique query strings (every request a fill) could make a replica buffer
 * without bound. Fills now share a per-replica budget, of which one tenant's fills hold at most a
 * quarter (here 1,000,000 bytes, the tenant's share); beyond it responses stream through uncached.
 * Other tenants: fill-budget-tenants.int.test.ts.
 */
const BODY_BYTES = 600_000;
const BUDGET_BYTES = 4_000_000;

/** An origin whose `?hold` responses send all but 1,000 bytes and wait for release(); chunked with `?chunked`. */
function startOrigin() {
  const held = new Set<() => void>();
  let heldStarted: () => void = () => {};
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'http://origin');
    const chunked = url.searchParams.has('chunked');
    const body = Buffer.alloc(BODY_BYTES, (url.pathname.length % 26) + 97);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      ...(chunked ? {} : { 'content-length': String(BODY_BYTES) }),
    });
    if (!url.searchParams.has('hold')) {
      res.end(body);
      return;
    }
    res.write(body.subarray(0, BODY_BYTES - 1_000), () => heldStarted());
    held.add(() => res.end(body.subarray(BODY_BYTES - 1_000)));
  });
  return {
    server,
    /** Resolves once a held response has sent its first part (the gateway is buffering it). */
    nextHeld: () =>
      new Promise<void>((resolve) => {
        heldStarted = resolve;
      }),
    releaseAll() {
      for (const release of held) release();
      held.clear();
    },
  };
}

/** Waits until the held fill's bytes are buffered (reserved as they arrive, not when the head arrives). */
async function heldBuffered(registry: Registry): Promise<void> {
  await vi.waitFor(
    async () => {
      const values = (await registry.getSingleMetric('vantageedge_gateway_cache_fill_bytes')?.get())?.values;
      expect(values?.[0]?.value ?? 0).toBeGreaterThanOrEqual(BODY_BYTES - 1_000);
    },
    { timeout: 5_000, interval: 10 },
  );
}

async function bypassCount(registry: Registry): Promise<number> {
  const text = await registry.metrics();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('vantageedge_gateway_cache_fill_budget_bypass_total'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe("cache fills share a per-replica memory budget (a tenant's share of it)", () => {
  let origin: ReturnType<typeof startOrigin>;
  let gateway: TestGateway;
  let cache: ResponseCache;
  let registry: Registry;
  const host = 'fillbudget.localhost';

  beforeAll(async () => {
    origin = startOrigin();
    await new Promise<void>((resolve) => origin.server.listen(0, '127.0.0.1', resolve));
    const originUrl = `http://127.0.0.1:${(origin.server.address() as AddressInfo).port}`;
    registry = createMetricsRegistry('fill-budget', { defaultMetrics: false });
    cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 16_000_000 }),
      l1MaxBytes: 16_000_000,
      registry,
      logger: createLogger({ service: 'test', level: 'error' }),
      fillBudgetBytes: BUDGET_BYTES,
    });
    gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'fillbudget',
      origins: [{ id: originId, targets: [originUrl] }],
      routes: [{ origin_id: originId, path_pattern: '/files/*' }],
    });
    snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 60, max_body_bytes: 2_000_000 });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });
  afterAll(async () => {
    origin.releaseAll();
    await gateway.close();
    await cache.close();
    await new Promise<void>((resolve) => {
      origin.server.close(() => resolve());
      origin.server.closeAllConnections();
    });
  });

  it('answers BYPASS (streamed, not stored) when a fill with a known length does not fit the budget', async () => {
    const heldPath = `/files/held?hold&q=${randomUUID()}`;
    const started = origin.nextHeld();
    const held = send(gateway, host, heldPath);
    await started;
    await heldBuffered(registry);
    const before = await bypassCount(registry);

    const otherPath = `/files/other?q=${randomUUID()}`;
    const other = await send(gateway, host, otherPath);
    expect(other.status).toBe(200);
    expect(other.text.length).toBe(BODY_BYTES);
    expect(other.headers['x-cache']).toBe('BYPASS');
    expect(await bypassCount(registry)).toBe(before + 1);

    origin.releaseAll();
    const heldResponse = await held;
    expect(heldResponse.headers['x-cache']).toBe('MISS');
    expect(heldResponse.text.length).toBe(BODY_BYTES);
    // The held fill was stored and released its share of the budget: the bypassed URL fills now.
    expect((await send(gateway, host, heldPath)).headers['x-cache']).toBe('HIT');
    expect((await send(gateway, host, otherPath)).headers['x-cache']).toBe('MISS');
    expect((await send(gateway, host, otherPath)).headers['x-cache']).toBe('HIT');
  });

  it('stops collecting (and does not store) a chunked fill once the budget is used up', async () => {
    const heldPath = `/files/held-chunked?hold&chunked&q=${randomUUID()}`;
    const started = origin.nextHeld();
    const held = send(gateway, host, heldPath);
    await started;
    await heldBuffered(registry);
    const before = await bypassCount(registry);

    const otherPath = `/files/other-chunked?chunked&q=${randomUUID()}`;
    const other = await send(gateway, host, otherPath);
    expect(other.status).toBe(200);
    expect(other.text.length).toBe(BODY_BYTES);
    expect(await bypassCount(registry)).toBe(before + 1);

    origin.releaseAll();
    expect((await held).text.length).toBe(BODY_BYTES);
    expect((await send(gateway, host, heldPath)).headers['x-cache']).toBe('HIT');
    // Not stored while over budget: the next request goes to the origin again.
    expect((await send(gateway, host, otherPath)).headers['x-cache']).toBe('MISS');
  });
});
