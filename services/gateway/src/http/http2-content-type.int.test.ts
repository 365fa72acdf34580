import { randomUUID } from 'node:crypto';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { rawExchange } from '../testing/raw-exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * An origin's Content-Type on several lines: an HTTP/1.1 browser gets every line and takes the last
 * valid media type of them (Fetch's "extract a MIME type", keeping an earlier charset for the same type);
 * HTTP/2 allows the field once, and the gateway sent the first line. The same answer was rendered as
 * text over HTTP/1.1 and as HTML over HTTP/2, or the other way round.
 */
const HOST = 'h2ctype.localhost';
const LINES: Record<string, string[]> = {
  '/two': ['text/plain', 'text/html'],
  '/charset': ['text/html; charset=iso-8859-1', 'text/html'],
  '/invalid-last': ['text/html', 'no type', '*/*'],
};

let gateway: TestGateway;
let origin: HttpOrigin;

beforeAll(async () => {
  origin = await startHttpOrigin((req, res) => {
    req.resume();
    res.setHeader('content-type', LINES[req.url ?? ''] ?? 'text/plain');
    res.end('<b>hello</b>');
  });
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2ctype',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

async function overHttp1(path: string): Promise<readonly string[] | undefined> {
  const request = `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`;
  const exchange = await rawExchange(gateway.gateway.trafficPort, Buffer.from(request), ['GET'], 5000);
  return exchange.responses[0]?.headers.get('content-type');
}

async function overHttp2(path: string): Promise<unknown> {
  const session = http2Connect(`http://127.0.0.1:${gateway.gateway.trafficPort}`);
  try {
    const answer = await http2Request(session, { path, authority: HOST, timeoutMs: 5000 });
    expect(answer.status).toBe(200);
    return answer.headers['content-type'];
  } finally {
    session.close();
  }
}

describe("an origin's Content-Type on several lines", () => {
  it('reaches an HTTP/2 client as the media type an HTTP/1.1 browser takes of the lines', async () => {
    expect(await overHttp1('/two')).toEqual(['text/plain', 'text/html']);
    expect(await overHttp2('/two')).toBe('text/html');
  });

  it("keeps an earlier line's charset for the same type, as browsers do", async () => {
    expect(await overHttp2('/charset')).toBe('text/html;charset=iso-8859-1');
  });

  it('skips lines that are no media type, and */*', async () => {
    expect(await overHttp2('/invalid-last')).toBe('text/html');
  });
});
