import type { ClientHttp2Session } from 'node:http2';
import { http2Connect, http2Request, https1Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Http2Listeners, startHttp2Listeners } from '../testing/http2-listeners.js';
import { rawExchange } from '../testing/raw-exchange.js';

/**
 * An HTTP/1.1 request offering to switch to cleartext HTTP/2 (`Upgrade: h2c`, RFC 7540 §3.2: what
 * `curl --http2` and Java's HttpClient send to an http:// URL) is served over HTTP/1.1 as the same
 * request without the offer, and as the same request over HTTP/2 is: a server may ignore an Upgrade
 * (RFC 9110 §7.8), and RFC 9113 deprecates h2c's. It was refused 400 invalid_upgrade, as a WebSocket
 * upgrade gone wrong.
 */
const HOST = 'h2coffers.localhost';
const OFFER = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n';

let listeners: Http2Listeners;
let session: ClientHttp2Session;

beforeAll(async () => {
  listeners = await startHttp2Listeners('h2coffers');
  session = http2Connect(`http://127.0.0.1:${listeners.plainPort}`);
});

afterAll(async () => {
  session?.close();
  await listeners?.close();
});

async function overHttp1(request: string, method = 'GET') {
  const exchange = await rawExchange(listeners.plainPort, Buffer.from(request, 'latin1'), [method], 5000);
  return exchange.responses[0];
}

const seenAt = (path: string) => listeners.origin.seen.find((entry) => entry.url === path);

describe('an HTTP/1.1 request offering an upgrade to h2c', () => {
  it('regression: is served over HTTP/1.1, as the same request over HTTP/2, the offer not forwarded', async () => {
    const overHttp2 = await http2Request(session, { path: '/offer/h2', authority: HOST });
    expect(overHttp2.status).toBe(200);
    const answer = await overHttp1(
      `GET /offer/h1 HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n${OFFER}\r\n`,
    );
    expect(answer?.statusLine).toBe('HTTP/1.1 200 OK');
    const forwarded = seenAt('/offer/h1')?.headers;
    expect(forwarded?.['upgrade']).toBeUndefined();
    expect(forwarded?.['http2-settings']).toBeUndefined();
  });

  it('regression: with a body, forwards the body and answers the request', async () => {
    const answer = await overHttp1(
      `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\nContent-Length: 5\r\n${OFFER}\r\nhello`,
      'POST',
    );
    expect(answer?.status).toBe(200);
    expect(JSON.parse(answer?.body ?? '{}')).toMatchObject({ bytes: 5 });
  });

  it('regression: is served over HTTPS/1.1 too', async () => {
    const answer = await https1Request(listeners.gateway.gateway.tlsPort as number, HOST, '/offer/https1', {
      headers: {
        connection: 'Upgrade, HTTP2-Settings',
        upgrade: 'h2c',
        'http2-settings': 'AAMAAABkAAQAAP__',
      },
    });
    expect(answer.status).toBe(200);
    expect(seenAt('/offer/https1')?.headers['upgrade']).toBeUndefined();
  });

  it('regression: closes the connection after answering it, never leaving a request pipelined behind unanswered', async () => {
    // node's parser stops where the offering request ends and drops what was read with it: the request
    // behind was neither answered nor refused, and the connection waited for the client's timeout.
    const exchange = await rawExchange(
      listeners.plainPort,
      Buffer.from(
        `GET /offer/first HTTP/1.1\r\nHost: ${HOST}\r\n${OFFER}\r\n` +
          `GET /offer/second HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
        'latin1',
      ),
      ['GET', 'GET'],
      5000,
    );
    expect(exchange.responses.map((response) => response.status)).toEqual([200]);
    expect(exchange.responses[0]?.headers.get('connection')).toEqual(['close']);
    expect(exchange.closed).toBe(true);
    expect(seenAt('/offer/second')).toBeUndefined();
  });

  it('regression: closes the connection after refusing the expectation of an offering request too', async () => {
    const exchange = await rawExchange(
      listeners.plainPort,
      Buffer.from(
        `GET /offer/expecting HTTP/1.1\r\nHost: ${HOST}\r\nExpect: something\r\n${OFFER}\r\n` +
          `GET /offer/after-expecting HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`,
        'latin1',
      ),
      ['GET', 'GET'],
      5000,
    );
    expect(exchange.responses.map((response) => response.status)).toEqual([417]);
    expect(exchange.closed).toBe(true);
  });

  it('a WebSocket upgrade that is no GET is still refused 400 invalid_upgrade', async () => {
    const answer = await overHttp1(
      `POST /ws HTTP/1.1\r\nHost: ${HOST}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n`,
      'POST',
    );
    expect(answer?.status).toBe(400);
    expect(answer?.body).toContain('"code":"invalid_upgrade"');
  });
});
