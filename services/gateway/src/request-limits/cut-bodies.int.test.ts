import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type BodyEndingOrigin, startBodyEndingOrigin } from '../testing/http-origins.js';
import { connectRaw, pause } from '../testing/raw-connections.js';
import {
  connectRawHttp2,
  dataFrame,
  type HeaderFields,
  headersFrame,
  resetFrame,
} from '../testing/raw-http2.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * What the origin gets of a request whose body was cut short, at the route's body limit or by the
 * client: never what looks like a whole request (a chunked body's last chunk, the end of a declared
 * length), which it could act on, but the upstream request aborted (its connection closed).
 */
describe('a request body cut short reaches the origin aborted, never as a whole request', () => {
  let gateway: TestGateway;
  let origin: BodyEndingOrigin;
  let session: ClientHttp2Session;

  beforeAll(async () => {
    origin = await startBodyEndingOrigin();
    gateway = await startTestGateway({ GATEWAY_H2C: 'true', GATEWAY_MAX_BODY_BYTES: '100000' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'cut',
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/limited/*', max_body_bytes: 100 },
          {
            origin_id: originId,
            path_pattern: '/retried/*',
            max_body_bytes: 100,
            retries: { methods: ['POST'], on: ['503', 'connect_error', 'reset'] },
          },
          { origin_id: originId, path_pattern: '/*' },
        ],
      }),
    );
    session = connect(gateway.url);
  });

  afterAll(async () => {
    session?.close();
    await gateway?.close();
    await origin?.close();
  });

  const endingAt = async (path: string) => {
    await eventually(`the origin to see how ${path} ended`, () => origin.endings.has(path));
    return origin.endings.get(path)!;
  };

  /** An HTTP/2 POST of `first` (no content-length unless given), then `finish` runs on its stream. */
  function h2Upload(
    path: string,
    first: string,
    headers: Record<string, string> = {},
  ): { stream: ReturnType<ClientHttp2Session['request']>; status: Promise<number> } {
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      [constants.HTTP2_HEADER_AUTHORITY]: 'cut.localhost',
      ...headers,
    });
    const status = new Promise<number>((resolve) => {
      stream.on('response', (head) => resolve(Number(head[constants.HTTP2_HEADER_STATUS])));
      stream.on('close', () => resolve(0));
      stream.on('error', () => resolve(0));
    });
    stream.resume();
    stream.write(first);
    return { stream, status };
  }

  it('a chunked HTTP/1.1 body over the route limit: 413, and the origin sees its request aborted', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: gateway.gateway.trafficPort,
          method: 'POST',
          path: '/limited/chunked',
          headers: { host: 'cut.localhost', 'transfer-encoding': 'chunked' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.write('y'.repeat(80));
      setTimeout(() => req.end('y'.repeat(80)), 100);
    });
    expect(status).toBe(413);
    expect((await endingAt('/limited/chunked')).ending).toBe('aborted');
  });

  it('an HTTP/2 body without content-length over the route limit: 413, the origin sees an abort', async () => {
    const upload = h2Upload('/limited/h2', 'y'.repeat(80));
    await pause(100);
    upload.stream.end('y'.repeat(80));
    expect(await upload.status).toBe(413);
    expect((await endingAt('/limited/h2')).ending).toBe('aborted');
  });

  it('an HTTP/2 body over the limit on a route retrying POSTs: 413, sent once, aborted', async () => {
    const upload = h2Upload('/retried/h2', 'y'.repeat(80));
    await pause(100);
    upload.stream.end('y'.repeat(80));
    expect(await upload.status).toBe(413);
    expect((await endingAt('/retried/h2')).ending).toBe('aborted');
  });

  for (const [framing, head, part] of [
    ['chunked', 'Transfer-Encoding: chunked', '5\r\nhello\r\n'],
    ['content-length', 'Content-Length: 50', 'hello'],
  ] as const) {
    for (const leaving of ['resets', 'half-closes'] as const) {
      const path = `/open/h1-${framing}-${leaving}`;
      it(`an HTTP/1.1 client that ${leaving} its connection in the middle of a ${framing} body: the origin sees an abort`, async () => {
        const client = await connectRaw('plain', gateway.gateway.trafficPort);
        client.socket.write(`POST ${path} HTTP/1.1\r\nHost: cut.localhost\r\n${head}\r\n\r\n${part}`);
        await eventually('the origin to get the request', () => origin.received.has(path));
        if (leaving === 'resets') client.socket.resetAndDestroy();
        else client.socket.end();
        expect(await endingAt(path)).toEqual({ ending: 'aborted', bytes: 5 });
        client.socket.destroy();
      });
    }
  }

  // A client's RST_STREAM before its END_STREAM leaves the request incomplete, whatever its error code,
  // though node's HTTP/2 compatibility layer ends the request's body on it as if it were whole.
  for (const [name, code] of [
    ['NO_ERROR', constants.NGHTTP2_NO_ERROR],
    ['CANCEL', constants.NGHTTP2_CANCEL],
  ] as const) {
    for (const declared of [false, true]) {
      const path = `/open/h2-reset-${name}${declared ? '-declared' : ''}`;
      it(`an HTTP/2 client that resets its stream (${name}) mid-body${declared ? ', content-length given' : ''}: the origin sees an abort`, async () => {
        const client = await connectRawHttp2('plain', gateway.gateway.trafficPort);
        try {
          const fields: HeaderFields = [
            [':method', 'POST'],
            [':scheme', 'http'],
            [':authority', 'cut.localhost'],
            [':path', path],
            ...(declared ? ([['content-length', '50']] as const) : []),
          ];
          client.send(headersFrame(1, fields, false), dataFrame(1, 'partial body', false));
          await eventually('the origin to get the request', () => origin.received.has(path));
          await pause(100);
          client.send(resetFrame(1, code));
          expect(await endingAt(path)).toEqual({ ending: 'aborted', bytes: 'partial body'.length });
        } finally {
          client.destroy();
        }
      });
    }
  }

  // The reset arriving with the request itself (one packet: HEADERS, DATA, RST_STREAM): the gateway
  // may not have reached the origin yet when the client is already gone.
  for (const [name, code] of [
    ['NO_ERROR', constants.NGHTTP2_NO_ERROR],
    ['CANCEL', constants.NGHTTP2_CANCEL],
  ] as const) {
    it(`an HTTP/2 request reset (${name}) in the packet that brought it: never a whole request at the origin`, async () => {
      const path = `/open/h2-reset-at-once-${name}`;
      const client = await connectRawHttp2('plain', gateway.gateway.trafficPort);
      try {
        const fields: HeaderFields = [
          [':method', 'POST'],
          [':scheme', 'http'],
          [':authority', 'cut.localhost'],
          [':path', path],
        ];
        client.send(headersFrame(1, fields, false), dataFrame(1, 'partial body', false), resetFrame(1, code));
        // A request sent after it on the same connection reaches the origin after it, if it is sent at all.
        const after = `${path}-after`;
        client.send(headersFrame(3, [...fields.slice(0, 3), [':path', after]], true));
        await endingAt(after);
        expect(origin.endings.get(path)?.ending).not.toBe('complete');
      } finally {
        client.destroy();
      }
    });
  }

  // nghttp2 resets a stream whose DATA goes past its content-length (PROTOCOL_ERROR): what the origin
  // was sent of it (the declared length, not more) never ends as a whole body.
  it('an HTTP/2 content-length that lies (more DATA than declared): the origin sees an abort', async () => {
    const path = '/limited/h2-lying-length';
    const upload = h2Upload(path, 'x'.repeat(10), { 'content-length': '50' });
    await eventually('the origin to get the request', () => origin.received.has(path));
    await pause(100);
    upload.stream.end('x'.repeat(490));
    expect(await upload.status).toBe(0);
    expect((await endingAt(path)).ending).toBe('aborted');
  });
});
