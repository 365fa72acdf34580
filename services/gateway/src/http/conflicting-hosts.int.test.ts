import { randomUUID } from 'node:crypto';
import type { ClientHttp2Session } from 'node:http2';
import net from 'node:net';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * A request that names two hosts is refused (RFC 9112 §3.2: more than one Host line is a 400; RFC 9113
 * §8.3.1: an HTTP/2 Host that differs from :authority is malformed). Before, the gateway served the
 * first Host line's tenant, while a proxy or WAF in front that reads the last one (or :authority) had
 * applied another tenant's rules: two tenants' answers for one request.
 */
const VICTIM = 'victim.localhost';
const ATTACKER = 'attacker.localhost';

let origin: TestOrigin;
let gateway: TestGateway;
let session: ClientHttp2Session;

/** One raw HTTP/1.1 exchange, read until the gateway closes the connection. */
function rawRequest(
  port: number,
  head: string,
): Promise<{ statusLine: string; headText: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(head));
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      received += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => {
      const [headText = '', body = ''] = received.split('\r\n\r\n');
      resolve({ statusLine: headText.split('\r\n')[0] ?? '', headText, body });
    });
  });
}

beforeAll(async () => {
  origin = await startTestOrigin('hosts-origin');
  gateway = await startTestGateway({ GATEWAY_H2C: 'true' });
  for (const subdomain of ['victim', 'attacker']) {
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain,
        origins: [{ id: originId, targets: [origin.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/api/*' },
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a redirect's location template
          { origin_id: null, path_pattern: '/home', redirect: { location: 'https://${host}/welcome' } },
          {
            origin_id: null,
            path_pattern: '/by-host',
            match: { hosts: [`${subdomain}.localhost`], headers: [], query: [] },
            fixed_response: { status: 200, body: 'host-matched route' },
          },
          {
            origin_id: null,
            path_pattern: '/by-host',
            fixed_response: { status: 200, body: 'path-only route' },
          },
        ],
      }),
    );
  }
  session = http2Connect(gateway.url);
});

afterAll(async () => {
  session?.close();
  await gateway?.close();
  await origin?.close();
});

describe('a request naming more than one host', () => {
  const port = () => Number(new URL(gateway.url).port);

  it('is refused 400 invalid_host over HTTP/1.1, whichever Host line comes first', async () => {
    for (const hosts of [
      [VICTIM, ATTACKER],
      [ATTACKER, VICTIM],
      [VICTIM, VICTIM],
    ]) {
      const head = `GET /api/whoami HTTP/1.1\r\n${hosts.map((host) => `Host: ${host}\r\n`).join('')}\r\n`;
      const answer = await rawRequest(port(), head);
      expect(answer.statusLine, hosts.join(' then ')).toBe('HTTP/1.1 400 Bad Request');
      expect(JSON.parse(answer.body).error.code).toBe('invalid_host');
    }
    // The same request with one Host line is served (and the connection closed above was not reused).
    const single = await rawRequest(
      port(),
      `GET /api/whoami HTTP/1.1\r\nHost: ${VICTIM}\r\nConnection: close\r\n\r\n`,
    );
    expect(single.statusLine).toBe('HTTP/1.1 200 OK');
  });

  it('is refused 400 on a WebSocket upgrade too', async () => {
    const head =
      `GET /api/socket HTTP/1.1\r\nHost: ${ATTACKER}\r\nHost: ${VICTIM}\r\nUpgrade: websocket\r\n` +
      'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
    const answer = await rawRequest(port(), head);
    expect(answer.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(answer.body).error.code).toBe('invalid_host');
  });

  it('is refused 400 over HTTP/2 when Host differs from :authority, and served when they agree', async () => {
    const conflicting = await http2Request(session, {
      path: '/api/whoami',
      authority: VICTIM,
      headers: { host: ATTACKER },
    });
    expect(conflicting.status).toBe(400);
    expect(JSON.parse(conflicting.body).error.code).toBe('invalid_host');
    const agreeing = await http2Request(session, {
      path: '/api/whoami',
      authority: VICTIM,
      headers: { host: VICTIM.toUpperCase() },
    });
    expect(agreeing.status).toBe(200);
  });

  // Regression: Host and :authority were compared as strings, so a Host naming the same entity in
  // another spelling RFC 3986 §6.2.3 normalises away (the scheme's default port, an empty port) was
  // refused 400; and Host, not :authority, was read, which RFC 9113 §8.3.1 forbids when both are sent.
  it('serves an HTTP/2 request whose Host names its :authority with the default port, read from :authority', async () => {
    for (const [authority, host] of [
      [`${VICTIM}:80`, VICTIM],
      [VICTIM, `${VICTIM.toUpperCase()}:`],
      [VICTIM, `${VICTIM.toUpperCase()}:80`],
    ] as const) {
      const answer = await http2Request(session, { path: '/api/whoami', authority, headers: { host } });
      expect(answer.status, `:authority ${authority}, Host ${host}`).toBe(200);
      expect(JSON.parse(answer.body).headers['x-forwarded-host']).toBe(authority);
    }
    for (const [authority, host] of [
      [`${VICTIM}:8080`, VICTIM],
      [VICTIM, `${VICTIM}:443`],
      [`${VICTIM}:80`, `${ATTACKER}:80`],
    ] as const) {
      const answer = await http2Request(session, { path: '/api/whoami', authority, headers: { host } });
      expect(answer.status, `:authority ${authority}, Host ${host}`).toBe(400);
      expect(JSON.parse(answer.body).error.code).toBe('invalid_host');
    }
  });
});

/**
 * A Host that is not `host[:port]` named two hosts at once: the tenant was found from its first colon,
 * while a route's host condition and a redirect's `${host}` read it from its last one, so a redirect of
 * the victim's sent browsers to `https://victim.localhost:@evil.example/…` (evil.example's page).
 */
describe('a Host that is not a host name with an optional port', () => {
  const port = () => Number(new URL(gateway.url).port);
  const get = (path: string, host: string) =>
    rawRequest(port(), `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);

  it('is refused 400 invalid_host, never redirected to the host after its userinfo', async () => {
    for (const host of [`${VICTIM}:@evil.example:1`, `${VICTIM}:x@evil.example:`, `${VICTIM}:1:2`]) {
      const answer = await get('/home', host);
      expect(answer.statusLine, host).toBe('HTTP/1.1 400 Bad Request');
      expect(JSON.parse(answer.body).error.code).toBe('invalid_host');
      expect(answer.headText.toLowerCase()).not.toContain('location:');
    }
    const served = await get('/home', `${VICTIM.toUpperCase()}:8080`);
    expect(served.statusLine).toBe('HTTP/1.1 302 Found');
    expect(served.headText).toContain(`location: https://${VICTIM}/welcome`);
  });

  it('never matches a route by another reading of its host than the tenant was found by', async () => {
    expect((await get('/by-host', `${VICTIM}:1:2`)).statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect((await get('/by-host', `${VICTIM}.:8000`)).body).toBe('host-matched route');
  });

  it('is refused 400 on a WebSocket upgrade and over HTTP/2 too', async () => {
    const upgrade = await rawRequest(
      port(),
      `GET /api/socket HTTP/1.1\r\nHost: ${VICTIM}:@evil.example\r\nUpgrade: websocket\r\n` +
        'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(upgrade.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(upgrade.body).error.code).toBe('invalid_host');
    const h2 = await http2Request(session, { path: '/home', authority: `${VICTIM}:1:2` });
    expect(h2.status).toBe(400);
    expect(JSON.parse(h2.body).error.code).toBe('invalid_host');
  });
});

/** RFC 9112 §3.2: an HTTP/1.1 request without a Host line is a 400; node's own answer had no error code. */
describe('an HTTP/1.1 request naming no host', () => {
  const port = () => Number(new URL(gateway.url).port);

  it('is refused 400 invalid_host, and an HTTP/1.0 one (which may omit it) 404 tenant_not_found', async () => {
    const missing = await rawRequest(port(), 'GET /api/whoami HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(missing.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(missing.body).error.code).toBe('invalid_host');
    const http10 = await rawRequest(port(), 'GET /api/whoami HTTP/1.0\r\n\r\n');
    expect(http10.statusLine).toBe('HTTP/1.1 404 Not Found');
    expect(JSON.parse(http10.body).error.code).toBe('tenant_not_found');
  });

  it('is refused 400 invalid_host on a WebSocket upgrade too', async () => {
    const upgrade = await rawRequest(
      port(),
      'GET /api/socket HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(upgrade.statusLine).toBe('HTTP/1.1 400 Bad Request');
    expect(JSON.parse(upgrade.body).error.code).toBe('invalid_host');
  });
});
