import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import http2 from 'node:http2';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * Concurrent misses of a key wait for one leader's fill. A client chooses to lead: a HEAD (only a GET's
 * response is stored) or a GET whose response it never reads (the fill takes the origin's body as the
 * client takes it). Every request behind such a leader went to the origin once it ended, none of them
 * stored: one HEAD turned 20 GETs into 20 origin requests, and a leader that read nothing held the others
 * for the whole coalescing wait. They now look again, and one of them fills the key for the others: at
 * once behind a HEAD, within a second of the leader's client holding its body back.
 */
/** Longer than the test waits: the requests behind a stalled leader must not wait it out. */
const COALESCE_TIMEOUT_MS = 60_000;
/** Larger than an HTTP/2 stream's buffers: a leader that reads nothing holds its origin's body back. */
const BODY = JSON.stringify({ price: 42, pad: 'x'.repeat(200_000) });
const HOST = 'leaders.localhost';

const originGets: string[] = [];
function originHandler(req: IncomingMessage, res: ServerResponse): void {
  req.resume();
  if (req.method === 'GET') originGets.push(req.url ?? '');
  setTimeout(() => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(req.method === 'HEAD' ? undefined : BODY);
  }, 300);
}

describe('leaders whose fill gives the requests behind them nothing', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  const gets = (path: string) => originGets.filter((url) => url === path).length;

  beforeAll(async () => {
    origin = await startHttpOrigin(originHandler);
    const cache = createResponseCache({
      store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
      l1MaxBytes: 1_000_000,
      coalesceTimeoutMs: COALESCE_TIMEOUT_MS,
      registry: createMetricsRegistry('leaders', { defaultMetrics: false }),
      logger: createLogger({ service: 'test', level: 'error' }),
    });
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' }, { stages: [createCacheStage(cache)] });
    const originId = randomUUID();
    const snapshot = buildSnapshot({
      subdomain: 'leaders',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*', cache_policy: { ttl_seconds: 60 } }],
    });
    gateway.store.apply(snapshot);
    await cache.prepareTenant(snapshot.tenant_id);
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('20 concurrent GETs of a miss make one origin request', async () => {
    const path = `/price/${randomUUID()}`;
    await Promise.all(Array.from({ length: 20 }, () => send(gateway, HOST, path)));
    expect(gets(path)).toBe(1);
  });

  it('a HEAD that came first leaves the GETs behind it one origin request, and they are HITs after', async () => {
    const path = `/price/${randomUUID()}`;
    const head = send(gateway, HOST, path, { method: 'HEAD' });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const answers = await Promise.all(Array.from({ length: 20 }, () => send(gateway, HOST, path)));
    expect((await head).status).toBe(200);
    expect(answers.every((answer) => answer.status === 200 && answer.text === BODY)).toBe(true);
    expect(gets(path)).toBe(1);
    expect((await send(gateway, HOST, path)).headers['x-cache']).toBe('HIT');
  });

  it('an HTTP/2 leader that reads nothing hands the key to the requests behind it, and one fills it for all', async () => {
    const path = `/price/${randomUUID()}`;
    const session = http2.connect(`http://127.0.0.1:${gateway.gateway.trafficPort}`, {
      settings: { initialWindowSize: 0 },
    });
    session.on('error', () => {});
    const stalled = session.request({ ':path': path, ':authority': HOST });
    stalled.on('error', () => {});
    await new Promise((resolve) => stalled.on('response', resolve));
    try {
      const answers = await Promise.all(Array.from({ length: 5 }, () => send(gateway, HOST, path)));
      expect(answers.every((answer) => answer.status === 200 && answer.text === BODY)).toBe(true);
      expect(gets(path)).toBe(2);
    } finally {
      session.destroy();
    }
  }, 30_000);
});
