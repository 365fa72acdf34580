import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * TRACE asks the origin to echo the request it got: with the headers the gateway added to it, a
 * route's origin credential (`request_headers` such as `x-api-key`, write-only in the admin API) among
 * them. Regression test: a route for every method forwarded TRACE, so any client could read that
 * credential back from an origin that answers TRACE.
 */
describe('TRACE', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('trace-origin');
    gateway = await startTestGateway();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'trace',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/debug/*', methods: ['GET', 'TRACE'] },
          {
            origin_id: originId,
            path_pattern: '/*',
            request_headers: { set: { 'x-api-key': 'origin-secret' } },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('is not taken by a route for every method, and never reaches its origin', async () => {
    const seenBefore = origin.seen.length;
    const traced = await send(gateway, 'trace.localhost', '/api/x', { method: 'TRACE' });
    expect(traced.status).toBe(404);
    expect(traced.json()).toMatchObject({ error: { code: 'route_not_found' } });
    expect(origin.seen.length).toBe(seenBefore);
    expect((await send(gateway, 'trace.localhost', '/api/x')).status).toBe(200);
  });

  it('is forwarded on a route that names it', async () => {
    const traced = await send(gateway, 'trace.localhost', '/debug/x', { method: 'TRACE' });
    expect(traced.status).toBe(200);
    expect(origin.seen.at(-1)?.method).toBe('TRACE');
  });
});
