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
 * A public route's origin may check callers itself, by a credential header of its own (OpenStack's
 * X-Auth-Token, Azure's Api-Key and x-functions-key, X-Access-Token, …) rather than Authorization. The
 * answer to such a caller is theirs as much as one to Authorization (RFC 9111 §3.5) or a session Cookie:
 * stored for everyone without the origin's consent, it went to the next anonymous client.
 */

let gateway: TestGateway;
let origin: Server;
const host = 'credheaders.localhost';
const ORIGIN_KEY = 'route-held-origin-key';

beforeAll(async () => {
  // /me answers the caller its token names (401 without one); /vary-me says it varies on the token.
  // Header names are read as CGI-style origins read them (`_` as `-`).
  origin = createServer((req, res) => {
    req.resume();
    const headers: Record<string, string | string[] | undefined> = {};
    for (const [name, value] of Object.entries(req.headers)) headers[name.replaceAll('_', '-')] = value;
    const sent = headers['x-auth-token'] ?? headers['x-access-token'];
    // The first token sent is the caller's (a later line, such as one a route adds, does not replace it).
    const token = Array.isArray(sent) ? sent[0] : sent?.split(',')[0];
    if (req.url?.startsWith('/catalog')) {
      // The route sends its own credential (request_headers.set): the answer is everyone's.
      res.writeHead(headers['api-key'] === ORIGIN_KEY ? 200 : 401, { 'content-type': 'text/plain' });
      res.end(`catalog ${randomUUID()}`);
      return;
    }
    if (token === undefined) {
      res.writeHead(401, { 'content-type': 'text/plain' });
      res.end('sign in');
      return;
    }
    const vary = req.url?.startsWith('/vary-me') ? { vary: 'X-Auth-Token' } : {};
    res.writeHead(200, { 'content-type': 'text/plain', ...vary });
    res.end(`account of ${token}`);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const cache = createResponseCache({
    store: new MemoryCacheStore({ maxBytes: 10_000_000 }),
    l1MaxBytes: 1_000_000,
    registry: createMetricsRegistry('credential-headers', { defaultMetrics: false }),
    logger: createLogger({ service: 'test', level: 'error' }),
  });
  gateway = await startTestGateway({}, { stages: [createCacheStage(cache)] });
  const originId = randomUUID();
  const snapshot = buildSnapshot({
    subdomain: 'credheaders',
    origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
    routes: [
      {
        origin_id: originId,
        path_pattern: '/catalog/*',
        request_headers: { set: { 'Api-Key': ORIGIN_KEY } },
      },
      {
        origin_id: originId,
        path_pattern: '/partner/*',
        request_headers: { add: { 'X-Auth-Token': 'partner' } },
      },
      { origin_id: originId, path_pattern: '/*' },
    ],
  });
  for (const route of snapshot.routes) route.cache_policy = cachePolicy.parse({ ttl_seconds: 3600 });
  gateway.store.apply(snapshot);
  await cache.prepareTenant(snapshot.tenant_id);
});

afterAll(async () => {
  await gateway?.close();
  await new Promise<void>((resolve) => origin?.close(() => resolve()));
});

describe('a public route whose origin checks a credential header of its own', () => {
  it.each(['X-Auth-Token', 'X-Access-Token', 'X_Auth_Token'])(
    "regression: a caller's answer to %s is never served to an anonymous client",
    async (name) => {
      const path = `/me/${randomUUID()}`;
      const alice = await send(gateway, host, path, { headers: { [name]: 'alice' } });
      expect(alice.text).toBe('account of alice');
      const anonymous = await send(gateway, host, path);
      expect(anonymous.status).toBe(401);
      expect(anonymous.text).toBe('sign in');
    },
  );

  it('stores an answer the origin keys on the credential (its Vary names it) for that caller alone', async () => {
    const path = `/vary-me/${randomUUID()}`;
    await send(gateway, host, path, { headers: { 'x-auth-token': 'alice' } });
    const again = await send(gateway, host, path, { headers: { 'x-auth-token': 'alice' } });
    expect(again.headers['x-cache']).toBe('HIT');
    expect(again.text).toBe('account of alice');
    const bob = await send(gateway, host, path, { headers: { 'x-auth-token': 'bob' } });
    expect(bob.text).toBe('account of bob');
  });

  it('stores the answers of a route that sends the origin a credential of its own (the same for every client)', async () => {
    const path = `/catalog/${randomUUID()}`;
    const first = await send(gateway, host, path);
    expect(first.status).toBe(200);
    const second = await send(gateway, host, path);
    expect(second.headers['x-cache']).toBe('HIT');
    expect(second.text).toBe(first.text);
  });

  it("regression: a caller's answer is never served to another client where the route adds a line to the caller's header", async () => {
    const path = `/partner/${randomUUID()}`;
    const alice = await send(gateway, host, path, { headers: { 'x-auth-token': 'alice' } });
    expect(alice.text).toBe('account of alice');
    const anonymous = await send(gateway, host, path);
    expect(anonymous.text).toBe('account of partner');
  });

  it('stores the answers of a route that adds a credential header no client sent', async () => {
    const path = `/partner/${randomUUID()}`;
    const first = await send(gateway, host, path);
    expect(first.text).toBe('account of partner');
    expect((await send(gateway, host, path)).headers['x-cache']).toBe('HIT');
  });
});
