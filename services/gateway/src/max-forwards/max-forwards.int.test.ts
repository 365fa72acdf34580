import { randomUUID } from 'node:crypto';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
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
 * Max-Forwards (RFC 9110 §7.6.2) on TRACE and OPTIONS: each intermediary decrements it, and the one
 * that receives 0 answers as the final recipient instead of forwarding. A TRACE the origin answered
 * would echo what the gateway added to the request (the caller's identity, X-Real-IP, a route's
 * origin credential) back to the client.
 */
describe('Max-Forwards', () => {
  let origin: TestOrigin;
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = await startTestOrigin('max-forwards-origin');
    gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'hops',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/debug/*',
            methods: ['GET', 'TRACE', 'OPTIONS'],
            request_headers: { set: { 'x-origin-credential': 'origin-secret' } },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('answers a TRACE with Max-Forwards: 0 itself, echoing the request without credentials', async () => {
    const seenBefore = origin.seen.length;
    const traced = await send(gateway, 'hops.localhost', '/debug/x?y=1', {
      method: 'TRACE',
      headers: {
        'max-forwards': '0',
        'x-probe': 'visible',
        authorization: 'Bearer client-secret',
        cookie: 'session=client-cookie',
      },
    });
    expect(traced.status).toBe(200);
    expect(traced.headers['content-type']).toBe('message/http');
    expect(traced.headers['cache-control']).toBe('no-store');
    expect(origin.seen.length).toBe(seenBefore);
    expect(traced.text.startsWith('TRACE /debug/x?y=1 HTTP/1.1\r\n')).toBe(true);
    expect(traced.text).toContain('x-probe: visible\r\n');
    expect(traced.text).not.toContain('client-secret');
    expect(traced.text).not.toContain('client-cookie');
    expect(traced.text).not.toContain('origin-secret');
    expect(traced.text.toLowerCase()).not.toContain('x-vantageedge-');
  });

  it('regression: echoes an HTTP/2 TRACE with the host it names, as an HTTP/1.1 one with its Host line', async () => {
    const session = http2Connect(gateway.url);
    try {
      const traced = await http2Request(session, {
        method: 'TRACE',
        path: '/debug/x',
        authority: 'hops.localhost',
        headers: { 'max-forwards': '0', 'x-probe': 'visible', cookie: 'session=client-cookie' },
      });
      expect(traced.status).toBe(200);
      expect(traced.body.startsWith('TRACE /debug/x HTTP/2.0\r\nhost: hops.localhost\r\n')).toBe(true);
      expect(traced.body).toContain('x-probe: visible\r\n');
      expect(traced.body).not.toContain(':authority');
      expect(traced.body).not.toContain('client-cookie');
    } finally {
      session.close();
    }
  });

  it('answers an OPTIONS with Max-Forwards: 0 itself, with the methods of the route', async () => {
    const seenBefore = origin.seen.length;
    const answered = await send(gateway, 'hops.localhost', '/debug/x', {
      method: 'OPTIONS',
      headers: { 'max-forwards': '0' },
    });
    expect(answered.status).toBe(200);
    expect(answered.headers['allow']).toBe('GET, TRACE, OPTIONS');
    expect(origin.seen.length).toBe(seenBefore);
  });

  it('forwards TRACE and OPTIONS with Max-Forwards one less', async () => {
    for (const method of ['TRACE', 'OPTIONS']) {
      const response = await send(gateway, 'hops.localhost', '/debug/x', {
        method,
        headers: { 'max-forwards': '3' },
      });
      expect(response.status).toBe(200);
      expect(origin.seen.at(-1)?.method).toBe(method);
      expect(origin.seen.at(-1)?.headers['max-forwards']).toBe('2');
    }
  });

  it('refuses a Max-Forwards that is not a number on TRACE and OPTIONS (400, naming the field)', async () => {
    const seenBefore = origin.seen.length;
    for (const value of ['-1', 'zero', '1.5', '']) {
      const refused = await send(gateway, 'hops.localhost', '/debug/x', {
        method: 'OPTIONS',
        headers: { 'max-forwards': value },
      });
      expect(refused.status, value).toBe(400);
      expect(refused.json()).toMatchObject({ error: { code: 'invalid_max_forwards' } });
      expect(String((refused.json()['error'] as { message: string }).message)).toContain('Max-Forwards');
    }
    expect(origin.seen.length).toBe(seenBefore);
  });

  it('leaves Max-Forwards alone on other methods', async () => {
    const response = await send(gateway, 'hops.localhost', '/debug/x', { headers: { 'max-forwards': '0' } });
    expect(response.status).toBe(200);
    expect(origin.seen.at(-1)?.headers['max-forwards']).toBe('0');
  });
});
