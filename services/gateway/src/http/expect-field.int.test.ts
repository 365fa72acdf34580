import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw, within } from '../testing/raw-connections.js';

/**
 * The Expect field over HTTP/1.1. `100-continue` is answered with the interim 100 and the request goes
 * on to its origin; any other expectation cannot be met and is refused 417 in the gateway's error shape
 * (node's own answer was a bare 417 without a body, the one refusal a client could not read a code from).
 */
const HOST = 'expect.localhost';

let origin: TestOrigin;
let gateway: TestGateway;

beforeAll(async () => {
  origin = await startTestOrigin('expect-origin');
  gateway = await startTestGateway();
  gateway.store.apply(catchAllTenant('expect', origin.url));
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

async function exchange(request: string): Promise<string> {
  const client = await connectRaw('plain', gateway.gateway.trafficPort);
  client.socket.write(request);
  await within(client.closed, 10_000, 'the connection closed');
  return client.received();
}

describe('the Expect field', () => {
  it('100-continue: the interim 100, then the origin answers the request', async () => {
    const received = await exchange(
      `POST /upload HTTP/1.1\r\nHost: ${HOST}\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`,
    );
    expect(received.startsWith('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n')).toBe(true);
    expect(received).toContain('"bytes":3');
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
