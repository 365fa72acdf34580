import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, constants } from 'node:http2';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { http2Connect } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  TEST_PEPPER,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { connectRaw, type RawClient, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * The Expect field over HTTP/1.1 (and HTTP/2, cleartext). `100-continue` is answered with the interim 100 when the gateway
 * reads the body to forward it, so a request it refuses first (no credentials, a body over the route's
 * limit, no route) is answered without the client sending its body; any other expectation cannot be
 * met and is refused 417 in the gateway's error shape (node's own answer was a bare 417 without a
 * body, the one refusal a client could not read a code from).
 *
 * Regression: node answered every 100-continue with the interim 100 before the gateway saw the request,
 * so a client was told to send a body the gateway was about to refuse, and sent it whole.
 */
const HOST = 'expect.localhost';
const API_KEY = 've_live_expect_field_key_0000000000000';

let origin: TestOrigin;
let gateway: TestGateway;
let session: ClientHttp2Session;

beforeAll(async () => {
  origin = await startTestOrigin('expect-origin');
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'expect',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
        { origin_id: originId, path_pattern: '/small/*', max_body_bytes: 4 },
        { origin_id: originId, path_pattern: '/*' },
      ],
      apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, API_KEY) }],
    }),
  );
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await origin?.close();
});

async function exchange(request: string): Promise<string> {
  const client = await connectRaw('plain', gateway.gateway.trafficPort);
  client.socket.write(request);
  await within(client.closed, 10_000, 'the connection closed');
  return client.received();
}

/** Sends a request head that expects 100-continue and waits for the first final answer, whole. */
async function headOnly(path: string, extraLines = ''): Promise<{ client: RawClient; answer: string }> {
  const client = await connectRaw('plain', gateway.gateway.trafficPort);
  client.socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 5\r\n${extraLines}\r\n`,
  );
  const answered = new Promise<void>((resolve) => {
    const check = () => {
      if (/\r\n\r\n\{"error":.*\}\}$/s.test(client.received())) {
        client.socket.off('data', check);
        resolve();
      }
    };
    client.socket.on('data', check);
    check();
  });
  await within(answered, 10_000, 'the final answer');
  return { client, answer: client.received() };
}

describe('the Expect field', () => {
  it('100-continue: the interim 100, then the origin answers the request', async () => {
    const received = await exchange(
      `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
    );
    expect(received.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
    expect(received).toContain('"bytes":3');
  });

  it('100-continue on a route with a key: the interim 100 once the key is accepted, then the answer', async () => {
    const received = await exchange(
      `POST /keyed/upload HTTP/1.1\r\nHost: ${HOST}\r\nX-Api-Key: ${API_KEY}\r\nExpect: 100-continue\r\n` +
        'Content-Length: 3\r\nConnection: close\r\n\r\nabc',
    );
    expect(received.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
  });

  it.each([
    ['/keyed/refused', '', 401, 'missing_credentials'],
    ['/keyed/refused-key', 'X-Api-Key: ve_live_not_a_key_of_anyone_0000000000\r\n', 401, 'invalid_api_key'],
    ['/small/refused', '', 413, 'payload_too_large'],
  ])(
    '100-continue on %s %s: refused %i (%s) without the interim 100, the body never sent, the connection closed',
    async (path, extraLines, status, code) => {
      const { client, answer } = await headOnly(path, extraLines);
      expect(answer.startsWith(`HTTP/1.1 ${status} `)).toBe(true);
      expect(answer).not.toContain('100 Continue');
      expect(answer).toContain(`"code":"${code}"`);
      // The client may not send the body it was never asked for: the connection is not reused.
      await within(client.closed, 10_000, 'the connection closed');
      expect(origin.seen.some((request) => request.url === path)).toBe(false);
    },
  );

  it('100-continue without a body (Content-Length: 0): answered, and the connection kept', async () => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `POST /empty HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n` +
        `GET /second HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    );
    await within(client.closed, 10_000, 'the connection closed');
    const finals = client.received().match(/HTTP\/1\.1 200 OK\r\n/g) ?? [];
    expect(finals).toHaveLength(2);
  });

  it('any other expectation: 417 with the error code expectation_failed, not forwarded', async () => {
    const received = await exchange(
      `GET /expect-other HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 200-ok\r\nConnection: close\r\n\r\n`,
    );
    const [head = '', body = ''] = received.split('\r\n\r\n');
    expect(head.startsWith('HTTP/1.1 417 Expectation Failed\r\n')).toBe(true);
    expect(JSON.parse(body)).toMatchObject({ error: { code: 'expectation_failed' } });
    expect(origin.seen.some((request) => request.url === '/expect-other')).toBe(false);
  });
});

describe('a request refused 417 for its expectation while its body is still coming', () => {
  // Regression: the 417 kept the connection and node read the rest of the body to reach the next
  // request, whatever its size: a client without credentials had a replica read a declared 100 MB, or a
  // chunked body without end, for nothing (the body limits and the bound on an unread rest never apply).
  const chunk = Buffer.alloc(128 * 1024, 'x');
  it.each([
    ['Content-Length: 100000000', chunk],
    ['Transfer-Encoding: chunked', Buffer.concat([Buffer.from('20000\r\n'), chunk, Buffer.from('\r\n')])],
  ])('%s: the 417, then the connection closed with the rest unread', async (framing, bodyStart) => {
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      `POST /expect-large HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 200-ok\r\n${framing}\r\n\r\n`,
    );
    client.socket.write(bodyStart);
    await within(client.closed, 10_000, 'the connection closed');
    const received = client.received();
    expect(received.startsWith('HTTP/1.1 417 Expectation Failed\r\n')).toBe(true);
    expect(received.toLowerCase()).toContain('connection: close\r\n');
    expect(received).toContain('"code":"expectation_failed"');
    expect(origin.seen.some((request) => request.url === '/expect-large')).toBe(false);
  });

  it('a short body is read and dropped: the 417, and the request pipelined behind it answered', async () => {
    const received = await exchange(
      `POST /expect-short HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 200-ok\r\nContent-Length: 5\r\n\r\nhello` +
        `GET /after-expect HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`,
    );
    expect(received.startsWith('HTTP/1.1 417 Expectation Failed\r\n')).toBe(true);
    expect(received).toContain('HTTP/1.1 200 OK\r\n');
    expect(origin.seen.map((request) => request.url)).toContain('/after-expect');
  });
});

describe('the Expect field over HTTP/2', () => {
  /** A stream announcing a 5-byte body; the body is sent only once the interim 100 came. */
  function expectContinue(path: string, headers: Record<string, string> = {}) {
    const stream = session.request({
      [constants.HTTP2_HEADER_METHOD]: 'POST',
      [constants.HTTP2_HEADER_PATH]: path,
      [constants.HTTP2_HEADER_AUTHORITY]: HOST,
      expect: '100-continue',
      'content-length': '5',
      ...headers,
    });
    let continued = false;
    stream.on('continue', () => {
      continued = true;
      stream.end('hello');
    });
    let body = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      body += chunk;
    });
    const answered = new Promise<number>((resolve, reject) => {
      let status = 0;
      stream.on('response', (head) => {
        status = Number(head[constants.HTTP2_HEADER_STATUS]);
      });
      stream.on('end', () => resolve(status));
      stream.on('error', reject);
    });
    return { answered, continued: () => continued, body: () => body };
  }

  it('a refused request is answered without the interim 100 (its body never sent)', async () => {
    const request = expectContinue('/keyed/refused-over-http2');
    expect(await within(request.answered, 10_000, 'the answer')).toBe(401);
    expect(request.continued()).toBe(false);
    expect(request.body()).toContain('"code":"missing_credentials"');
    expect(origin.seen.some((seen) => seen.url === '/keyed/refused-over-http2')).toBe(false);
  });

  it('a forwarded request gets the interim 100, then its body goes to the origin', async () => {
    const request = expectContinue('/upload', {});
    expect(await within(request.answered, 10_000, 'the answer')).toBe(200);
    expect(request.continued()).toBe(true);
    expect(request.body()).toContain('"bytes":5');
  });
});
