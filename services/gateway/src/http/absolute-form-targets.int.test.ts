import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DefaultCertificateFiles,
  writeDefaultCertificateFiles,
} from '../testing/default-certificate-files.js';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { catchAllTenant, connectRaw } from '../testing/raw-connections.js';
import { errorCodeOf, firstRawResponse, type RawResponse } from '../testing/raw-exchange.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * An absolute-form request target (`GET http://host/path HTTP/1.1`, RFC 9112 §3.2.2), which a server
 * must accept and which clients send to what they take for a proxy, is served as the request for its
 * authority and path. Regression test: every such request was refused 400 invalid_path, whatever host
 * it named. A Host naming another authority is refused 400 invalid_host, as two Host lines are: a proxy
 * in front may have routed by either.
 */
let gateway: TestGateway;
let origin: TestOrigin;
let other: TestOrigin;
let certificates: DefaultCertificateFiles;

beforeAll(async () => {
  origin = await startTestOrigin('absolute');
  other = await startTestOrigin('other');
  certificates = await writeDefaultCertificateFiles('absolute-form');
  gateway = await startTestGateway(certificates.tlsListenerEnv);
  gateway.store.apply(catchAllTenant('absolute', origin.url));
  gateway.store.apply(catchAllTenant('other', other.url));
});

afterAll(async () => {
  await gateway.close();
  await origin.close();
  await other.close();
  await certificates.remove();
});

const answer = (request: string): Promise<RawResponse | undefined> =>
  firstRawResponse(gateway.gateway.trafficPort, request);

function lastSeen(of: TestOrigin) {
  return of.seen.at(-1);
}

describe('absolute-form request targets', () => {
  it('are served as the path and query they name, for the host they name', async () => {
    const response = await answer(
      'GET http://absolute.localhost/orders/1?page=2 HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(response?.status).toBe(200);
    expect(lastSeen(origin)?.url).toBe('/orders/1?page=2');
    expect(lastSeen(origin)?.headers['x-forwarded-host']).toBe('absolute.localhost');
  });

  it('take a Host that names the same authority in another spelling (letter case, default port)', async () => {
    const response = await answer(
      'GET http://ABSOLUTE.localhost:80/spelled HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(response?.status).toBe(200);
    expect(lastSeen(origin)?.url).toBe('/spelled');
  });

  it('name the root when they have no path', async () => {
    const response = await answer(
      'GET http://absolute.localhost?q=1 HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(response?.status).toBe(200);
    expect(lastSeen(origin)?.url).toBe('/?q=1');
  });

  it('give an HTTP/1.0 request without Host its host', async () => {
    const response = await answer('GET http://absolute.localhost/old HTTP/1.0\r\n\r\n');
    expect(response?.status).toBe(200);
    expect(lastSeen(origin)?.url).toBe('/old');
    expect(lastSeen(origin)?.headers['x-forwarded-host']).toBe('absolute.localhost');
  });

  it("say nothing of the client's scheme: X-Forwarded-Proto is the connection's", async () => {
    const plain = await answer(
      'GET https://absolute.localhost/plain HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(plain?.status).toBe(200);
    expect(lastSeen(origin)?.url).toBe('/plain');
    expect(lastSeen(origin)?.headers['x-forwarded-proto']).toBe('http');

    const client = await connectRaw('tls', gateway.gateway.tlsPort as number, 'absolute.localhost');
    client.socket.write(
      'GET https://absolute.localhost/secure HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n',
    );
    await client.closed;
    expect(client.received().startsWith('HTTP/1.1 200 ')).toBe(true);
    expect(lastSeen(origin)?.url).toBe('/secure');
    expect(lastSeen(origin)?.headers['x-forwarded-proto']).toBe('https');
  });

  it('are refused 400 invalid_host when Host names another tenant, which gets nothing', async () => {
    const before = [origin.seen.length, other.seen.length];
    const response = await answer(
      'GET http://other.localhost/admin HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n',
    );
    expect(response?.status).toBe(400);
    expect(response === undefined ? undefined : errorCodeOf(response)).toBe('invalid_host');
    expect([origin.seen.length, other.seen.length]).toEqual(before);
  });

  it('are refused 400 invalid_path with user information (RFC 9110 §4.2.4) or another scheme', async () => {
    const before = [origin.seen.length, other.seen.length];
    for (const target of ['http://absolute.localhost@other.localhost/x', 'ftp://absolute.localhost/x']) {
      const response = await answer(
        `GET ${target} HTTP/1.1\r\nHost: absolute.localhost\r\nConnection: close\r\n\r\n`,
      );
      expect(response?.status).toBe(400);
      expect(response === undefined ? undefined : errorCodeOf(response)).toBe('invalid_path');
    }
    expect([origin.seen.length, other.seen.length]).toEqual(before);
  });

  it('open WebSocket upgrades too', async () => {
    const upgrade = await sendUpgrade(gateway, 'absolute.localhost', 'http://absolute.localhost/ws?room=1');
    // The test origin answers every request 200: relayed as the origin's refusal of the upgrade.
    expect(upgrade.status).toBe(200);
    expect(lastSeen(origin)?.url).toBe('/ws?room=1');
    expect(lastSeen(origin)?.headers.upgrade).toBe('websocket');
  });
});
