import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { onRequestHeads } from '../testing/request-heads.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache, type ResponseCache } from './response-cache.js';

/**
 * A stale-while-revalidate refresh has no client waiting for it, so only the gateway's deadlines end
 * it. Regressions found with a hostile origin:
 * - an origin answering a refresh with `103 Early Hints` every 200 ms held it (its connection, one of
 *   the tenant's requests in flight, the entry's refresh) for as long as it kept sending them: undici
 *   starts its head timer again on each 1xx, and the refresh had no deadline of its own;
 * - a refresh ignored its route's `timeouts` (response_headers_ms, idle_ms): it waited out the
 *   origin's timeout_seconds for a head or a body byte that a client's request gives up on far sooner;
 * - a refresh whose body the origin cut after a good head was released as that head's status, a
 *   success for the target's passive health and circuit.
 */
const HOST = 'refreshes.localhost';
/** How long the test waits for the gateway to give a refresh up: well past every deadline below. */
const GIVE_UP_WITHIN_MS = 4_000;

interface RawOrigin {
  readonly server: net.Server;
  /** Resolves once the gateway closed the connection of the path's refresh (its second request). */
  refreshClosed(path: string): Promise<void>;
}

/**
 * Answers a path's first request at once (stored: fresh for 1 s, then stale for 10 minutes); what a
 * later request (the refresh) gets depends on the path: `/hints/*` a 103 every 200 ms and never a final
 * answer, `/silent/*` nothing, `/stalled/*` a head and one byte of a body that never goes on, `/cut/*`
 * a head and one byte, then a reset.
 */
function startRawOrigin(): Promise<RawOrigin> {
  const seen = new Set<string>();
  const closed = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  const closedOf = (path: string) => {
    let entry = closed.get(path);
    if (entry === undefined) {
      let resolve: () => void = () => {};
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      entry = { promise, resolve };
      closed.set(path, entry);
    }
    return entry;
  };
  const server = net.createServer((socket) =>
    onRequestHeads(socket, (_head, path) => {
      if (!seen.has(path)) {
        seen.add(path);
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nold');
        return;
      }
      socket.once('close', () => closedOf(path).resolve());
      if (path.startsWith('/hints/')) {
        const hints = setInterval(() => {
          if (socket.destroyed) clearInterval(hints);
          else socket.write('HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\n');
        }, 200);
      } else if (path.startsWith('/stalled/')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nn');
      } else if (path.startsWith('/cut/')) {
        socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nn');
        setTimeout(() => socket.resetAndDestroy(), 50);
      }
    }),
  );
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, refreshClosed: (path) => closedOf(path).promise })),
  );
}

let origin: RawOrigin;
let gateway: TestGateway;
let cache: ResponseCache;
let clock = Date.now();
let tenantId: string;
/** Ejects its target and opens its circuit on the first failure. */
const fragileOrigin = randomUUID();

beforeAll(async () => {
  origin = await startRawOrigin();
  cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 1_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('refresh-deadlines', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
    now: () => clock,
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  const target = `http://127.0.0.1:${(origin.server.address() as net.AddressInfo).port}`;
  const quickOrigin = randomUUID();
  const slowOrigin = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'refreshes',
    origins: [
      { id: quickOrigin, targets: [target], timeout_seconds: 1 },
      { id: slowOrigin, targets: [target], timeout_seconds: 30 },
      {
        id: fragileOrigin,
        targets: [target],
        circuit_breaker: { consecutive_failures: 1, open_seconds: 60 },
        health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 1 } },
      },
    ],
    routes: [
      { origin_id: quickOrigin, path_pattern: '/hints/*' },
      { origin_id: slowOrigin, path_pattern: '/silent/*', timeouts: { response_headers_ms: 300 } },
      { origin_id: slowOrigin, path_pattern: '/stalled/*', timeouts: { idle_ms: 300 } },
      { origin_id: fragileOrigin, path_pattern: '/cut/*' },
    ],
  });
  for (const route of snapshot.routes)
    route.cache_policy = cachePolicy.parse({ ttl_seconds: 1, stale_while_revalidate_seconds: 600 });
  tenantId = snapshot.tenant_id;
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await cache?.close();
  await new Promise<void>((resolve) => origin?.server.close(() => resolve()));
});

/** Stores the path's first answer, then serves it stale: the gateway refreshes it in the background. */
async function staleWithRefresh(path: string): Promise<void> {
  expect((await send(gateway, HOST, path)).headers['x-cache']).toBe('MISS');
  clock += 2_000;
  const stale = await send(gateway, HOST, path);
  expect(stale.headers['x-cache']).toBe('STALE');
  expect(stale.text).toBe('old');
}

/** 'given up' once the gateway closed the refresh's connection, 'still running' if it never did. */
function refreshOutcome(path: string): Promise<'given up' | 'still running'> {
  return Promise.race([
    origin.refreshClosed(path).then(() => 'given up' as const),
    new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), GIVE_UP_WITHIN_MS)),
  ]);
}

describe('a stale-while-revalidate refresh no client waits for', () => {
  it('is given up at the origin timeout when the origin sends only 103 Early Hints', async () => {
    const path = `/hints/${randomUUID()}`;
    await staleWithRefresh(path);
    expect(await refreshOutcome(path)).toBe('given up');
    // The entry was not replaced: the next request still gets the stored answer.
    expect((await send(gateway, HOST, path)).text).toBe('old');
  });

  it("is given up at its route's response_headers_ms when no head comes", async () => {
    const path = `/silent/${randomUUID()}`;
    await staleWithRefresh(path);
    expect(await refreshOutcome(path)).toBe('given up');
  });

  it("is given up at its route's idle_ms when the body stops coming", async () => {
    const path = `/stalled/${randomUUID()}`;
    await staleWithRefresh(path);
    expect(await refreshOutcome(path)).toBe('given up');
    expect((await send(gateway, HOST, path)).text).toBe('old');
  });

  it('whose body the origin cuts counts against the target', async () => {
    const path = `/cut/${randomUUID()}`;
    await staleWithRefresh(path);
    expect(await refreshOutcome(path)).toBe('given up');
    const upstreams = () =>
      gateway.store.get(tenantId)?.origins.get(fragileOrigin)?.upstreams as InspectableUpstreamSet;
    await eventually('the refresh is released', () => upstreams().status()[0]?.in_flight === 0, 5_000);
    expect(upstreams().status()[0]).toMatchObject({ healthy: false, circuit: 'open' });
  });
});
