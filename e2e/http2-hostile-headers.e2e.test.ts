import { randomUUID } from 'node:crypto';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, describe, expect, it } from 'vitest';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Regression: a route stored with `keep-alive` in its fixed response (accepted by commands then) made
 * one HTTP/2 request throw in writeHead, the error answer throw again out of the request listener, and
 * the replica process exit 1 — every tenant down. The real process keeps serving, the other tenant too.
 */
let gateway: LoneGateway | undefined;
afterAll(async () => {
  await gateway?.close();
});

describe('a hostile route header and an HTTP/2 client', () => {
  it('the replica answers, stays up and serves the other tenant', async () => {
    gateway = await startLoneGateway({
      env: { GATEWAY_H2C: 'true' },
      snapshots: [
        buildSnapshot({
          tenantId: randomUUID(),
          subdomain: 'hostile',
          origins: [],
          routes: [
            {
              origin_id: null,
              path_pattern: '/maintenance',
              fixed_response: { status: 503, headers: { 'keep-alive': 'timeout=5' }, body: 'down' },
            },
          ] as never,
        }),
        buildSnapshot({
          subdomain: 'victim',
          origins: [],
          routes: [
            { origin_id: null, path_pattern: '/ok', fixed_response: { status: 200, body: 'victim ok' } },
          ] as never,
        }),
      ],
    });
    expect((await gateway.request('victim', '/ok')).status).toBe(200);
    const session = http2Connect(gateway.url);
    try {
      const answer = await http2Request(session, {
        path: '/maintenance',
        authority: 'hostile.localhost',
        timeoutMs: 3_000,
      });
      expect(answer.status).toBe(503);
      expect(answer.headers['keep-alive']).toBeUndefined();
    } finally {
      session.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(gateway.service.exited()).toBe(false);
    expect((await gateway.request('victim', '/ok', { timeoutMs: 2_000 })).status).toBe(200);
  });
});
