import type { ClientHttp2Session } from 'node:http2';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { catchAllTenant } from '../testing/raw-connections.js';
import { firstRawResponse } from '../testing/raw-exchange.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * Via (RFC 9110 §7.6.3): a gateway MUST send one in each request it forwards, the protocol the client
 * spoke and its pseudonym appended to what earlier proxies wrote. Regression test: origins got no Via at
 * all, so one could not tell a request that came through the platform, nor over which protocol.
 */
let gateway: TestGateway;
let quiet: TestGateway;
let origin: TestOrigin;
let session: ClientHttp2Session;

beforeAll(async () => {
  origin = await startTestOrigin('via');
  gateway = await startTestGateway({ GATEWAY_H2C: 'true', GATEWAY_VIA: 'vantageedge' });
  quiet = await startTestGateway();
  gateway.store.apply(catchAllTenant('via', origin.url));
  quiet.store.apply(catchAllTenant('via', origin.url));
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session.close();
  await gateway.close();
  await quiet.close();
  await origin.close();
});

function lastVia(): string | string[] | undefined {
  return origin.seen.at(-1)?.headers.via;
}

async function viaOfRaw(target: TestGateway, request: string): Promise<string | string[] | undefined> {
  const response = await firstRawResponse(target.gateway.trafficPort, request);
  expect(response?.status).toBe(200);
  // The answer to the client carries none of the gateway's (a gateway MAY add it, and it would tell
  // every client what serves it).
  expect(response?.headers.get('via')).toBeUndefined();
  return lastVia();
}

describe('Via on the requests the gateway forwards', () => {
  it('names the protocol an HTTP/1.1 client spoke and the gateway', async () => {
    const via = await viaOfRaw(
      gateway,
      'GET /a HTTP/1.1\r\nHost: via.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(via).toBe('1.1 vantageedge');
  });

  it('names HTTP/1.0 for an HTTP/1.0 client, whatever the gateway speaks to the origin', async () => {
    const via = await viaOfRaw(gateway, 'GET /a HTTP/1.0\r\nHost: via.localhost\r\n\r\n');
    expect(via).toBe('1.0 vantageedge');
  });

  it('is appended after the entries of the proxies in front, which reach the origin in order', async () => {
    const via = await viaOfRaw(
      gateway,
      'GET /a HTTP/1.1\r\nHost: via.localhost\r\nVia: 1.1 cdn-a\r\nVia: 2 edge (Edge)\r\nConnection: close\r\n\r\n',
    );
    expect(via).toBe('1.1 cdn-a, 2 edge (Edge), 1.1 vantageedge');
  });

  it('names HTTP/2 for an HTTP/2 client', async () => {
    const response = await http2Request(session, { path: '/a', authority: 'via.localhost' });
    expect(response.status).toBe(200);
    expect(response.headers.via).toBeUndefined();
    expect(lastVia()).toBe('2 vantageedge');
  });

  it('is sent on a WebSocket upgrade', async () => {
    await sendUpgrade(gateway, 'via.localhost', '/ws', { via: '1.1 cdn-a' });
    expect(origin.seen.at(-1)?.headers.upgrade).toBe('websocket');
    expect(lastVia()).toBe('1.1 cdn-a, 1.1 vantageedge');
  });

  it("is not sent by default (GATEWAY_VIA=off): a client's own entries still reach the origin", async () => {
    expect(await viaOfRaw(quiet, 'GET /a HTTP/1.1\r\nHost: via.localhost\r\nConnection: close\r\n\r\n')).toBe(
      undefined,
    );
    const via = await viaOfRaw(
      quiet,
      'GET /a HTTP/1.1\r\nHost: via.localhost\r\nVia: 1.1 cdn-a\r\nConnection: close\r\n\r\n',
    );
    expect(via).toBe('1.1 cdn-a');
  });
});
