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
 * Regression test: a route stored before commands refused the gateway's forwarding headers in a
 * transform, removing `x.forwarded.for`, removed a trusted proxy's X-Forwarded-For (as another spelling
 * of it) before the gateway appended the peer: the origin never learnt the client's address. Such a
 * route neither removes nor writes a header the gateway writes, in any spelling; its other changes stay.
 */
describe('a stored route transforming the forwarding headers, behind a trusted proxy', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;

  beforeAll(async () => {
    origin = await startTestOrigin('forwarding');
    // The test client connects from 127.0.0.1: to this gateway it is a trusted proxy.
    gateway = await startTestGateway({ GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'fwdtransform',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/*',
            request_headers: {
              set: { 'x.forwarded.host': 'evil.example', 'X-Kept': 'yes' },
              add: {},
              remove: ['x.forwarded.for', 'X_Forwarded_Proto', 'x_real_ip', 'X.Request.Id', 'X-Debug'],
            },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('passes the proxy’s forwarding headers on, appended to, and applies the route’s other changes', async () => {
    const response = await send(gateway, 'fwdtransform.localhost', '/page', {
      headers: {
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'shop.example',
        'x-debug': '1',
      },
    });
    expect(response.status).toBe(200);
    const seen = origin.seen.at(-1)?.headers ?? {};
    expect({
      'x-forwarded-for': seen['x-forwarded-for'],
      'x-forwarded-proto': seen['x-forwarded-proto'],
      'x-forwarded-host': seen['x-forwarded-host'],
      'x-real-ip': seen['x-real-ip'],
      'x-debug': seen['x-debug'],
      'x-kept': seen['x-kept'],
    }).toEqual({
      'x-forwarded-for': '203.0.113.7, 127.0.0.1',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'shop.example',
      'x-real-ip': '203.0.113.7',
      'x-debug': undefined,
      'x-kept': 'yes',
    });
    expect(seen['x-request-id']).toBe(response.headers['x-request-id']);
  });
});
