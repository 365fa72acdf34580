import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { within } from '../testing/raw-connections.js';
import { rawExchange } from '../testing/raw-exchange.js';
import { connectRawHttp2, type HeaderFields, headersFrame } from '../testing/raw-http2.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A field sent on several lines reaches the origin as node:http reads it from an HTTP/1.1 client, over
 * HTTP/2 too. node's HTTP/2 layer keeps only the first line of If-None-Match, If-Match, Content-Encoding,
 * Content-Language, Range and a few more, where HTTP/1.1 joins them into one list (RFC 9110 §5.3): an
 * HTTP/2 client's second entity tag, or its second content coding, was silently dropped.
 */
const HOST = 'h2repeated.localhost';
const CURRENT_TAG = '"v2"';

/** Every field whose repeated lines node's HTTP/2 layer read otherwise than node:http. */
const REPEATED: HeaderFields = [
  ['if-match', '"v1"'],
  ['if-match', CURRENT_TAG],
  ['content-encoding', 'gzip'],
  ['content-encoding', 'br'],
  ['content-language', 'en'],
  ['content-language', 'de'],
  ['range', 'bytes=0-1'],
  ['range', 'bytes=4-5'],
  ['if-range', '"v1"'],
  ['if-range', '"v2"'],
  ['content-location', '/a'],
  ['content-location', '/b'],
  ['content-range', 'bytes 0-1/9'],
  ['content-range', 'bytes 2-3/9'],
  ['content-md5', 'a'],
  ['content-md5', 'b'],
  ['date', 'Sun, 06 Dec 2026 08:00:00 GMT'],
  ['date', 'Sun, 06 Dec 2026 09:00:00 GMT'],
  ['dnt', '1'],
  ['dnt', '0'],
  ['tk', 'N'],
  ['tk', 'T'],
  ['upgrade-insecure-requests', '1'],
  ['upgrade-insecure-requests', '0'],
  ['x-content-type-options', 'nosniff'],
  ['x-content-type-options', 'other'],
  ['access-control-allow-credentials', 'true'],
  ['access-control-allow-credentials', 'false'],
  ['access-control-max-age', '1'],
  ['access-control-max-age', '2'],
  ['server', 'first'],
  ['server', 'second'],
];
const FIELD_NAMES = [...new Set(REPEATED.map(([name]) => name))];

let gateway: TestGateway;
let origin: HttpOrigin;
const seen = new Map<string, IncomingHttpHeaders>();

beforeAll(async () => {
  // Answers 304 when the client's If-None-Match names its current tag, as an origin evaluating it does.
  origin = await startHttpOrigin((req, res) => {
    seen.set(req.url ?? '', req.headers);
    req.resume();
    if (req.headers['if-none-match']?.includes(CURRENT_TAG)) res.writeHead(304, { etag: CURRENT_TAG }).end();
    else res.writeHead(200, { etag: CURRENT_TAG, 'content-type': 'text/plain' }).end('current');
  });
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'h2repeated',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

async function overHttp1(path: string, fields: HeaderFields): Promise<number | undefined> {
  const lines = fields.map(([name, value]) => `${name}: ${value}\r\n`).join('');
  const request = `GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n${lines}\r\n`;
  const exchange = await rawExchange(
    gateway.gateway.trafficPort,
    Buffer.from(request, 'latin1'),
    ['GET'],
    5000,
  );
  return exchange.responses[0]?.status;
}

async function overHttp2(path: string, fields: HeaderFields): Promise<number | undefined> {
  const client = await connectRawHttp2('plain', gateway.gateway.trafficPort);
  try {
    const request: HeaderFields = [
      [':method', 'GET'],
      [':scheme', 'http'],
      [':authority', HOST],
      [':path', path],
      ...fields,
    ];
    client.send(headersFrame(1, request, true));
    await within(
      (async () => {
        while (!client.answer(1).ended && client.answer(1).resetCode === undefined)
          await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      5000,
      'the HTTP/2 answer',
    );
    return client.answer(1).status;
  } finally {
    client.destroy();
  }
}

describe('a field sent on several lines, over HTTP/2 and HTTP/1.1', () => {
  it('regression: reaches the origin joined as one list, as from an HTTP/1.1 client', async () => {
    expect(await overHttp1('/fields/http1', REPEATED)).toBe(200);
    expect(await overHttp2('/fields/http2', REPEATED)).toBe(200);
    const pick = (headers: IncomingHttpHeaders | undefined) =>
      Object.fromEntries(FIELD_NAMES.map((name) => [name, headers?.[name]]));
    const fromHttp1 = pick(seen.get('/fields/http1'));
    expect(fromHttp1['if-match']).toBe(`"v1", ${CURRENT_TAG}`);
    expect(fromHttp1['content-encoding']).toBe('gzip, br');
    expect(pick(seen.get('/fields/http2'))).toEqual(fromHttp1);
  });

  it('regression: a conditional GET naming the current tag on its second If-None-Match line is answered 304', async () => {
    const conditional: HeaderFields = [
      ['if-none-match', '"v1"'],
      ['if-none-match', CURRENT_TAG],
    ];
    expect(await overHttp1('/conditional/http1', conditional)).toBe(304);
    expect(await overHttp2('/conditional/http2', conditional)).toBe(304);
  });
});
