import { randomUUID } from 'node:crypto';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { rawExchange } from '../testing/raw-exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A byte past ASCII in a query: HTTP/1.1's parser refuses it in the request line, and an origin's
 * HTTP/1.1 parser may too (node's and Tomcat's answer a bare 400 and close the pooled connection, nginx
 * takes it). An HTTP/2 `:path` carries it (curl sends a URL as typed); the gateway wrote it raw into the
 * origin's request line. It now sends it percent-encoded, as a browser would have sent it.
 */
const HOST = 'h2query.localhost';
/** `?q=€` as UTF-8 bytes, each a character as node's HTTP/2 client sends a string (latin1). */
const EURO_QUERY = '?q=\u00e2\u0082\u00ac';

let gateway: TestGateway;
let origin: HttpOrigin;
const seen: string[] = [];

beforeAll(async () => {
  origin = await startHttpOrigin((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    res.end('ok');
  });
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2query',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/api/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

describe('a query with bytes past ASCII', () => {
  it('is refused over HTTP/1.1 before the gateway reads it', async () => {
    const request = `GET /api/x${EURO_QUERY} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`;
    const exchange = await rawExchange(
      gateway.gateway.trafficPort,
      Buffer.from(request, 'latin1'),
      ['GET'],
      5000,
    );
    expect(exchange.responses[0]?.status).toBe(400);
    expect(seen).toEqual([]);
  });

  it('is sent to the origin percent-encoded over HTTP/2, never raw, as a browser sends it', async () => {
    const session = http2Connect(`http://127.0.0.1:${gateway.gateway.trafficPort}`);
    try {
      const raw = await http2Request(session, {
        path: `/api/x${EURO_QUERY}&b=caf\u00c3\u00a9`,
        authority: HOST,
        timeoutMs: 5000,
      });
      expect(raw.status).toBe(200);
      const encoded = await http2Request(session, {
        path: '/api/x?q=%E2%82%AC',
        authority: HOST,
        timeoutMs: 5000,
      });
      expect(encoded.status).toBe(200);
      expect(seen).toEqual(['/api/x?q=%E2%82%AC&b=caf%C3%A9', '/api/x?q=%E2%82%AC']);
    } finally {
      session.close();
    }
  });
});
