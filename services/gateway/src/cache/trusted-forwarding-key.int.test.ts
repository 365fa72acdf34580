import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cachePolicy } from '@vantageedge/shared/domain/gateway-config';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { createCacheStage } from './cache-stage.js';
import { MemoryCacheStore } from './memory-cache-store.js';
import { createResponseCache } from './response-cache.js';

/**
 * Behind a trusted proxy the origin is told the client's port and path prefix as the proxy gave them
 * (X-Forwarded-Port, X-Forwarded-Prefix), and a proxy may pass a client's own value on unchanged.
 * Origins build their links and redirects from them (Spring's ForwardedHeaderFilter, ASP.NET's
 * PathBase, Django's FORCE_SCRIPT_NAME-style prefixes): one client's values must never reach the entry
 * the other clients of the URL get.
 */

let gateway: TestGateway;
let origin: Server;
const host = 'fwdkey.localhost';

beforeAll(async () => {
  origin = createServer((req, res) => {
    req.resume();
    const port = req.headers['x-forwarded-port'];
    const prefix = req.headers['x-forwarded-prefix'] ?? '';
    // As Spring's ForwardedHeaderFilter reads it: the first element of Forwarded, before X-Forwarded-*.
    const first = String(req.headers.forwarded ?? '').split(',')[0]!;
    const host = /host="?([^;,"]+)/i.exec(first)?.[1];
    const proto = /proto="?([^;,"]+)/i.exec(first)?.[1];
    res.writeHead(200, { 'content-type': 'text/html', 'cache-control': 'public, max-age=3600' });
    res.end(`<a href="${prefix}/next">next</a> on port ${port} <a href="${proto}://${host}/home">home</a>`);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('trusted-forwarding-key', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway(
    { GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' },
    { stages: [createCacheStage(cache)] },
  );
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'fwdkey',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
  snapshot.routes[0]!.cache_policy = cachePolicy.parse({ ttl_seconds: 3600 });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe('the response cache behind a trusted proxy', () => {
  it('regression: a client’s X-Forwarded-Prefix, passed on by the proxy, never reaches another client’s links', async () => {
    const path = `/page/${randomUUID()}`;
    const attack = await send(gateway, host, path, { headers: { 'x-forwarded-prefix': '//evil.example' } });
    expect(attack.text).toContain('href="//evil.example/next"');
    const victim = await send(gateway, host, path);
    expect(victim.text).toContain('href="/next"');
    // Each prefix's answer is cached on its own.
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
  });

  it('regression: a client’s X-Forwarded-Port, passed on by the proxy, never reaches another client’s page', async () => {
    const path = `/page/${randomUUID()}`;
    const attack = await send(gateway, host, path, { headers: { 'x-forwarded-port': '8443' } });
    expect(attack.text).toContain('on port 8443');
    const victim = await send(gateway, host, path);
    expect(victim.text).toContain(`on port ${gateway.gateway.trafficPort}`);
  });

  it('regression: a client’s Forwarded host and proto, passed on by the proxy, never reach another client’s links', async () => {
    const path = `/page/${randomUUID()}`;
    const attack = await send(gateway, host, path, {
      headers: { forwarded: 'for=192.0.2.7;host=evil.example;proto=http' },
    });
    expect(attack.text).toContain('href="http://evil.example/home"');
    const victim = await send(gateway, host, path);
    expect(victim.text).toContain(`href="http://${host}/home"`);
  });

  it('keys on what the proxy’s Forwarded tells the origin of the request, not on the client address in it', async () => {
    const path = `/page/${randomUUID()}`;
    const forwarded = (address: string) => ({ forwarded: `for=${address};proto=https;host=${host}` });
    const first = await send(gateway, host, path, { headers: forwarded('192.0.2.7') });
    expect(first.headers['x-cache']).toBe('MISS');
    const other = await send(gateway, host, path, { headers: forwarded('"[2001:db8::1]:4711"') });
    expect(other.headers['x-cache']).toBe('HIT');
    expect(other.text).toContain(`href="https://${host}/home"`);
  });
});
