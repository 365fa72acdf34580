// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} is the route policies' own value-template syntax
import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheStage } from '../cache/cache-stage.js';
import { memoryResponseCache } from '../cache/testing/memory-response-cache.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A value a route writes with a space or tab at an edge (written so, or a variable empty for this
 * request next to a space) reads the same to an HTTP/1.1 client, whose parser drops that whitespace
 * (RFC 9112 §5). HTTP/2 has no such reading: RFC 9113 §8.2.1 makes a response carrying one malformed,
 * and HTTP/2 clients drop the field or the whole response.
 */
describe('header values a route writes, to HTTP/2 clients', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    origin = await startTestOrigin('h2-values-origin');
    gateway = await startTestGateway(
      { GATEWAY_H2C: 'true' },
      { stages: [createCacheStage(memoryResponseCache())] },
    );
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: randomUUID(),
        subdomain: 'h2values',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/proxied/*',
            response_headers: {
              set: { 'content-security-policy': "default-src 'self' ", 'x-caller': 'caller ${consumer_id}' },
              add: { 'x-note': '\tnoted' },
              remove: [],
            },
          },
          {
            origin_id: originId,
            path_pattern: '/cached/*',
            cache_policy: { ttl_seconds: 60 },
            response_headers: { set: { 'x-caller': 'caller ${consumer_id}' }, add: {}, remove: [] },
          },
          {
            origin_id: originId,
            path_pattern: '/fixed',
            fixed_response: { status: 200, headers: { 'x-frame-options': ' DENY ' }, body: 'fixed' },
          },
        ],
      }),
    );
    session = http2Connect(`http://127.0.0.1:${gateway.gateway.trafficPort}`);
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await origin?.close();
  });

  it('sends the values a route writes without the spaces and tabs at their edges', async () => {
    const answer = await http2Request(session, { path: '/proxied/x', authority: 'h2values.localhost' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-security-policy']).toBe("default-src 'self'");
    // An anonymous caller's ${consumer_id} is empty.
    expect(answer.headers['x-caller']).toBe('caller');
    expect(answer.headers['x-note']).toBe('noted');
  });

  it('sends them on an answer from the cache too', async () => {
    const miss = await http2Request(session, { path: '/cached/x', authority: 'h2values.localhost' });
    const hit = await http2Request(session, { path: '/cached/x', authority: 'h2values.localhost' });
    expect([miss.headers['x-cache'], hit.headers['x-cache']]).toEqual(['MISS', 'HIT']);
    expect([miss.headers['x-caller'], hit.headers['x-caller']]).toEqual(['caller', 'caller']);
  });

  it("sends a fixed response's header values without the spaces at their edges", async () => {
    const answer = await http2Request(session, { path: '/fixed', authority: 'h2values.localhost' });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('fixed');
    expect(answer.headers['x-frame-options']).toBe('DENY');
  });
});
