import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { connect, constants } from 'node:http2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/** A route's own body and header limits, below the gateway's global ones. */
describe('max_body_bytes and max_header_bytes route policies', () => {
  let gateway: TestGateway;
  let origin: TestOrigin;

  beforeAll(async () => {
    origin = await startTestOrigin('limits');
    gateway = await startTestGateway({ GATEWAY_MAX_BODY_BYTES: '100000', GATEWAY_H2C: 'true' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'limits',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/upload', max_body_bytes: 100 },
          { origin_id: originId, path_pattern: '/small-headers/*', max_header_bytes: 512 },
          { origin_id: originId, path_pattern: '/other' },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it("refuses a declared body over the route's limit with 413 before the origin sees it", async () => {
    const before = origin.seen.length;
    const big = await send(gateway, 'limits.localhost', '/upload', { method: 'POST', body: 'x'.repeat(101) });
    expect(big.status).toBe(413);
    expect(big.json()['error']).toMatchObject({ code: 'payload_too_large' });
    expect(origin.seen.length).toBe(before);
    const fits = await send(gateway, 'limits.localhost', '/upload', {
      method: 'POST',
      body: 'x'.repeat(100),
    });
    expect(fits.status).toBe(200);
    const elsewhere = await send(gateway, 'limits.localhost', '/other', {
      method: 'POST',
      body: 'x'.repeat(5000),
    });
    expect(elsewhere.status).toBe(200);
  });

  it("cuts a chunked body at the route's limit", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          method: 'POST',
          path: '/upload',
          headers: { host: 'limits.localhost', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('y'.repeat(80));
      req.end('y'.repeat(80));
    });
    expect(status).toBe(413);
  });

  // What follows a body cut at the limit is read (so that a next request could be), but never without
  // end: a client that goes on sending has its connection closed — after its 413, which it reads.
  // Regression: with the rest of the body already arrived when the limit tripped, the connection was
  // destroyed before the 413 was written, and the client read nothing.
  it('closes the connection of a client that goes on sending a chunked body cut at the limit', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    const chunk = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
    const more = chunk('y'.repeat(16 * 1024));
    client.socket.write(
      `POST /upload HTTP/1.1\r\nHost: limits.localhost\r\nTransfer-Encoding: chunked\r\n\r\n${chunk('y'.repeat(160))}${more}${more}`,
    );
    const sending = setInterval(() => client.socket.write(more), 5);
    try {
      await within(client.closed, 10_000, 'the connection closing');
    } finally {
      clearInterval(sending);
    }
    expect(client.received().startsWith('HTTP/1.1 413 ')).toBe(true);
  });

  it("answers 431 to a header section over the route's limit", async () => {
    const big = await send(gateway, 'limits.localhost', '/small-headers/x', {
      headers: { 'x-big': 'z'.repeat(600) },
    });
    expect(big.status).toBe(431);
    expect(big.json()['error']).toMatchObject({ code: 'request_header_fields_too_large' });
    expect((await send(gateway, 'limits.localhost', '/small-headers/x')).status).toBe(200);
    expect(
      (await send(gateway, 'limits.localhost', '/other', { headers: { 'x-big': 'z'.repeat(600) } })).status,
    ).toBe(200);
  });

  // Regression: over HTTP/1.1 the route's limit counted the header lines but not the request line, so
  // a long URL got past it (the listener's limit counts the URL, and over HTTP/2 :path is a field).
  it("counts the request line against the route's header limit, as the listener's limit does", async () => {
    const long = await send(gateway, 'limits.localhost', `/small-headers/${'u'.repeat(600)}`);
    expect(long.status).toBe(431);
    expect(long.json()['error']).toMatchObject({ code: 'request_header_fields_too_large' });
    const query = await send(gateway, 'limits.localhost', `/small-headers/x?q=${'u'.repeat(600)}`);
    expect(query.status).toBe(431);
  });

  // Over HTTP/2 the route's limit counts the header list as it arrived, decoded (HPACK's compression,
  // which makes repeated fields nearly free on the wire, does not count), each cookie crumb a field of
  // its own, as the listener's limit (SETTINGS_MAX_HEADER_LIST_SIZE) counts it.
  it("counts an HTTP/2 header list decoded against the route's limit: 431, a smaller one passes", async () => {
    const session = connect(gateway.url);
    const status = (headers: Record<string, string | string[]>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({
          [constants.HTTP2_HEADER_PATH]: '/small-headers/x',
          [constants.HTTP2_HEADER_AUTHORITY]: 'limits.localhost',
          ...headers,
        });
        let body = '';
        let code = 0;
        stream.setEncoding('utf8');
        stream.on('response', (head) => {
          code = Number(head[constants.HTTP2_HEADER_STATUS]);
        });
        stream.on('data', (chunk: string) => {
          body += chunk;
        });
        stream.on('end', () => resolve({ status: code, body }));
        stream.on('error', reject);
      });
    try {
      expect((await status({ 'x-small': 'z'.repeat(300) })).status).toBe(200);
      const repeated = await status({ 'x-same': Array.from({ length: 40 }, () => 'z'.repeat(20)) });
      expect(repeated.status).toBe(431);
      expect(JSON.parse(repeated.body)['error']).toMatchObject({ code: 'request_header_fields_too_large' });
      const crumbs = Array.from({ length: 20 }, (_, i) => `c${i}=0123456789`);
      expect((await status({ cookie: crumbs })).status).toBe(431);
      expect((await status({ cookie: crumbs.slice(0, 5) })).status).toBe(200);
    } finally {
      session.close();
    }
  });

  it("refuses a WebSocket upgrade over the route's header limit with 431, never forwarded", async () => {
    const before = origin.seen.length;
    const refused = await sendUpgrade(gateway, 'limits.localhost', '/small-headers/ws', {
      'x-big': 'z'.repeat(600),
    });
    expect(refused.status).toBe(431);
    expect(JSON.parse(refused.text)['error']).toMatchObject({ code: 'request_header_fields_too_large' });
    expect(origin.seen.length).toBe(before);
  });
});
