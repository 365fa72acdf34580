import { type ClientHttp2Session, constants } from 'node:http2';
import { http2Connect } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestGateway, TestOrigin } from '../testing/gateway-harness.js';
import { type Http2Listeners, startHttp2Listeners } from '../testing/http2-listeners.js';
import { within } from '../testing/raw-connections.js';
import { connectRawHttp2, headersFrame, type RawHttp2Client } from '../testing/raw-http2.js';

/**
 * What HTTP/2 carries in pseudo-headers and HTTP/1.1 in its request line — the method and the scheme —
 * is held to the same rules on both: a method the HTTP/1.1 listeners' parser refuses is refused over
 * HTTP/2 too (it was forwarded to the origin), and `:scheme` must be what the connection is (an `http`
 * request on a TLS connection claims a cleartext request it was not; it was forwarded as https).
 */
const HOST = 'h2requestline.localhost';
const PROTOCOL_ERROR = constants.NGHTTP2_PROTOCOL_ERROR;

let listeners: Http2Listeners;
let origin: TestOrigin;
let gateway: TestGateway;
let tlsPort: number;
let plainPort: number;
const sessions: ClientHttp2Session[] = [];
const rawClients: RawHttp2Client[] = [];

beforeAll(async () => {
  // Extended CONNECT not announced: a `:protocol` is then a malformed request.
  listeners = await startHttp2Listeners('h2requestline', { GATEWAY_HTTP2_WEBSOCKETS: 'false' });
  ({ origin, gateway, tlsPort, plainPort } = listeners);
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  for (const client of rawClients) client.destroy();
  await listeners?.close();
});

/**
 * Over TLS only `https`. Over cleartext `http`, and `https` too: a proxy in front that ended the client's
 * TLS speaks h2c to the gateway and may keep the scheme the client used (X-Forwarded-Proto still says
 * what reached the gateway).
 */
const LISTENERS = [
  {
    listener: 'TLS (ALPN h2)',
    kind: 'tls' as const,
    scheme: 'https',
    served: ['https'],
    refused: ['http', 'ftp', 'HTTPS', 'wss'],
  },
  {
    listener: 'h2c',
    kind: 'plain' as const,
    scheme: 'http',
    served: ['http', 'https'],
    refused: ['ftp', 'HTTP', 'ws'],
  },
];

function connect(kind: 'tls' | 'plain'): ClientHttp2Session {
  const session = http2Connect(
    kind === 'tls' ? `https://127.0.0.1:${tlsPort}` : `http://127.0.0.1:${plainPort}`,
    { servername: 'localhost' },
  );
  sessions.push(session);
  return session;
}

interface Outcome {
  status: number | undefined;
  errorCode: string | undefined;
  rstCode: number | undefined;
}

/** One request with the pseudo-headers given (node's client fills in the rest), and how it ended. */
function send(session: ClientHttp2Session, headers: Record<string, string>): Promise<Outcome> {
  const stream = session.request({ ':authority': HOST, ...headers });
  stream.on('error', () => {});
  let status: number | undefined;
  let body = '';
  stream.on('response', (received) => {
    status = Number(received[':status']);
  });
  stream.on('data', (chunk: Buffer) => {
    body += chunk.toString('utf8');
  });
  stream.end();
  return new Promise((resolve) =>
    stream.once('close', () => {
      let errorCode: string | undefined;
      try {
        errorCode = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
      } catch {
        errorCode = undefined;
      }
      resolve({ status, errorCode, rstCode: stream.rstCode });
    }),
  );
}

const forwarded = (pathname: string) => origin.seen.filter((entry) => entry.url === pathname);

describe.each(LISTENERS)(
  'the HTTP/2 request line on the $listener listener',
  ({ kind, scheme, served, refused }) => {
    it('regression: a method the HTTP/1.1 listeners refuse is answered 400 invalid_method, not forwarded', async () => {
      const session = connect(kind);
      for (const method of ['FOO', 'GETT', 'BREW']) {
        const pathname = `/method/${kind}/${method}`;
        expect(await send(session, { ':method': method, ':path': pathname }), method).toMatchObject({
          status: 400,
          errorCode: 'invalid_method',
        });
        expect(forwarded(pathname), method).toEqual([]);
      }
      // A method that is no token at all never reaches the gateway: the stream is reset as malformed.
      const malformed = await send(session, { ':method': 'G(T', ':path': `/method/${kind}/malformed` });
      expect(malformed).toMatchObject({ status: undefined, rstCode: PROTOCOL_ERROR });
      // The methods HTTP/1.1 clients may send are forwarded as they are.
      for (const method of ['PROPFIND', 'PATCH', 'GET']) {
        const pathname = `/method/${kind}/${method}-ok`;
        expect(await send(session, { ':method': method, ':path': pathname }), method).toMatchObject({
          status: 200,
        });
        expect(forwarded(pathname).map((entry) => entry.method)).toEqual([method]);
      }
    });

    // Regression: the access-log line carried such a method whole, up to the header limit (16 KiB).
    it('regression: a long method is refused and logged cut to its first 32 characters', async () => {
      const session = connect(kind);
      const pathname = `/method/${kind}/long`;
      const method = 'X'.repeat(12_000);
      expect(await send(session, { ':method': method, ':path': pathname })).toMatchObject({
        status: 400,
        errorCode: 'invalid_method',
      });
      const logged = await vi.waitFor(
        () => {
          const line = gateway.logLines.find(
            (entry) => entry['kind'] === 'access' && entry['path'] === pathname,
          );
          expect(line).toBeDefined();
          return line;
        },
        { timeout: 10_000 },
      );
      expect(logged?.['method']).toBe(`${'X'.repeat(32)}…`);
    });

    it('regression: a :scheme the connection does not carry is answered 400 invalid_scheme, not forwarded', async () => {
      const session = connect(kind);
      for (const claimed of refused) {
        const pathname = `/scheme/${kind}/${claimed}`;
        expect(await send(session, { ':scheme': claimed, ':path': pathname }), claimed).toMatchObject({
          status: 400,
          errorCode: 'invalid_scheme',
        });
        expect(forwarded(pathname), claimed).toEqual([]);
      }
      for (const claimed of served) {
        const pathname = `/scheme/${kind}/served-${claimed}`;
        expect((await send(session, { ':scheme': claimed, ':path': pathname })).status, claimed).toBe(200);
        expect(forwarded(pathname)[0]?.headers['x-forwarded-proto'], claimed).toBe(scheme);
      }
    });

    it('a request without :scheme, or an extended CONNECT (not announced), is reset as malformed and never forwarded; the session serves on', async () => {
      const client = await connectRawHttp2(kind, kind === 'tls' ? tlsPort : plainPort);
      rawClients.push(client);
      const noScheme = `/scheme/${kind}/none`;
      const extendedConnect = `/scheme/${kind}/extended-connect`;
      client.send(
        headersFrame(
          1,
          [
            [':method', 'GET'],
            [':authority', HOST],
            [':path', noScheme],
          ],
          true,
        ),
        // A WebSocket over HTTP/2 (RFC 8441): with GATEWAY_HTTP2_WEBSOCKETS off, no SETTINGS_ENABLE_CONNECT_PROTOCOL.
        headersFrame(
          3,
          [
            [':method', 'CONNECT'],
            [':protocol', 'websocket'],
            [':scheme', scheme],
            [':authority', HOST],
            [':path', extendedConnect],
            ['sec-websocket-version', '13'],
          ],
          false,
        ),
        headersFrame(
          5,
          [
            [':method', 'GET'],
            [':scheme', scheme],
            [':authority', HOST],
            [':path', `/scheme/${kind}/after-malformed`],
          ],
          true,
        ),
      );
      await within(
        new Promise<void>((resolve) => {
          const poll = setInterval(() => {
            if (client.answer(5).ended || client.isClosed()) {
              clearInterval(poll);
              resolve();
            }
          }, 20);
        }),
        10_000,
        'the request after the malformed ones answered',
      );
      expect(client.answer(1).resetCode).toBe(PROTOCOL_ERROR);
      expect(client.answer(3).resetCode).toBe(PROTOCOL_ERROR);
      expect(client.answer(5)).toMatchObject({ status: 200, ended: true });
      expect(forwarded(noScheme)).toEqual([]);
      expect(forwarded(extendedConnect)).toEqual([]);
    });
  },
);
