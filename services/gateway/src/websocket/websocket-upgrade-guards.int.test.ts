import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { connectRaw, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { sendUpgrade } from '../testing/upgrade-request.js';

/**
 * Regression tests for WebSocket upgrades that skipped the guards every other request goes through:
 * an origin's `Set-Cookie: …; Domain=<platform base domain>` was relayed unchanged on its 101 and on a
 * refusal (any tenant could set cookies on every tenant's host), and an upgrade with more header lines
 * than GATEWAY_MAX_HEADERS_COUNT was switched and forwarded instead of refused 431 too_many_headers (and
a query with characters that must be percent-encoded, instead of 400 invalid_query), and an upgrade was
 * matched without the routes' `match` conditions: on a host whose route needs a key, the host-less public
 * route switched it; and an upgrade that declared a body had that body read by the gateway while its
 * Content-Length went to the origin, which took the WebSocket's first bytes for it (or, waiting for
 * them, left the upgrade to time out 504); and an upgrade without a usable Sec-WebSocket-Key was
 * forwarded, though no origin's answer to it can be checked.
 */
const COOKIES = [
  'platform=1; Domain=localhost; Path=/',
  'base=1; Domain=vantageedge.dev; Secure',
  'other-tenant=1; Domain=globex.localhost',
  'own-host=1; Domain=acme.localhost; Path=/',
  'no-domain=1; Path=/',
];
const SCOPED = [
  'platform=1; Path=/',
  'base=1; Secure',
  'other-tenant=1',
  'own-host=1; Domain=acme.localhost; Path=/',
  'no-domain=1; Path=/',
];
const MAX_HEADERS = 20;
/** The tenant's custom domain whose /ws/* route needs a key (a route `match.hosts` condition). */
const ADMIN_HOST = 'admin.acme.example';

describe('WebSocket upgrades go through the same guards as requests', () => {
  let origin: Server;
  /** Header lines of each upgrade the origin received. */
  const upgrades: number[] = [];
  let gateway: TestGateway;

  beforeAll(async () => {
    origin = createServer((_req, res) => {
      res.setHeader('set-cookie', COOKIES);
      res.end('plain');
    });
    // Switches on /ws/accept, refuses (403) anything else; both answers set the cookies.
    origin.on('upgrade', (req, socket: Socket) => {
      upgrades.push(req.rawHeaders.length / 2);
      const cookies = COOKIES.map((cookie) => `Set-Cookie: ${cookie}\r\n`).join('');
      if (req.url === '/ws/accept') {
        socket.end(
          `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n${cookies}\r\n`,
        );
      } else {
        socket.end(`HTTP/1.1 403 Forbidden\r\n${cookies}Content-Length: 2\r\nConnection: close\r\n\r\nno`);
      }
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    gateway = await startTestGateway({ GATEWAY_MAX_HEADERS_COUNT: String(MAX_HEADERS) });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'acme',
        customDomains: [ADMIN_HOST],
        origins: [{ id: originId, targets: [`http://127.0.0.1:${(origin.address() as AddressInfo).port}`] }],
        routes: [
          { origin_id: originId, path_pattern: '/ws/*' },
          {
            origin_id: originId,
            path_pattern: '/ws/*',
            auth_mode: 'apikey_required',
            match: { hosts: [ADMIN_HOST] },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    origin?.closeAllConnections();
    await new Promise((resolve) => origin?.close(resolve));
  });

  it("scopes Set-Cookie Domain attributes on the origin's 101", async () => {
    const answer = await sendUpgrade(gateway, 'acme.localhost', '/ws/accept');
    expect(answer.status).toBe(101);
    expect(answer.headers['set-cookie']).toEqual(SCOPED);
  });

  it("scopes Set-Cookie Domain attributes on the origin's refusal of the upgrade", async () => {
    const answer = await sendUpgrade(gateway, 'acme.localhost', '/ws/refuse');
    expect(answer.status).toBe(403);
    expect(answer.text).toBe('no');
    expect(answer.headers['set-cookie']).toEqual(SCOPED);
  });

  it('refuses an upgrade with more header lines than GATEWAY_MAX_HEADERS_COUNT (431), as a request', async () => {
    const extra = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`x-extra-${i}`, 'v']));
    const plain = await send(gateway, 'acme.localhost', '/ws/accept', { headers: extra });
    expect(plain.status).toBe(431);

    const before = upgrades.length;
    const answer = await sendUpgrade(gateway, 'acme.localhost', '/ws/accept', extra);
    expect(answer.status).toBe(431);
    expect(JSON.parse(answer.text)).toEqual(JSON.parse(plain.text));
    expect(JSON.parse(answer.text)).toEqual({
      error: { code: 'too_many_headers', message: `a request may have at most ${MAX_HEADERS} header lines` },
    });
    expect(upgrades.length).toBe(before);
  });

  it('switches an upgrade within the header limit', async () => {
    const before = upgrades.length;
    // 5 lines from sendUpgrade (host, connection, upgrade, version, key) plus these: the limit exactly.
    const lines = Object.fromEntries(Array.from({ length: MAX_HEADERS - 5 }, (_, i) => [`x-fits-${i}`, 'v']));
    const answer = await sendUpgrade(gateway, 'acme.localhost', '/ws/accept', lines);
    expect(answer.status).toBe(101);
    expect(upgrades.length).toBe(before + 1);
  });

  // Regression test: the upgrade forwarded a query the same request without Upgrade is refused.
  it('refuses an upgrade whose query has characters that must be percent-encoded (400), as a request', async () => {
    const plain = await send(gateway, 'acme.localhost', '/ws/accept?q="<x>');
    expect(plain.status).toBe(400);

    const before = upgrades.length;
    const answer = await sendUpgrade(gateway, 'acme.localhost', '/ws/accept?q="<x>');
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toEqual(JSON.parse(plain.text));
    expect(JSON.parse(answer.text).error.code).toBe('invalid_query');
    expect(upgrades.length).toBe(before);
  });

  it("matches routes with the request's host, headers and query: a host's keyed route guards its upgrades", async () => {
    const plain = await send(gateway, ADMIN_HOST, '/ws/accept');
    expect(plain.status).toBe(401);

    const before = upgrades.length;
    const answer = await sendUpgrade(gateway, ADMIN_HOST, '/ws/accept');
    expect(answer.status).toBe(401);
    expect(JSON.parse(answer.text).error.code).toBe(JSON.parse(plain.text).error.code);
    expect(upgrades.length).toBe(before);
    expect((await sendUpgrade(gateway, 'acme.localhost', '/ws/accept')).status).toBe(101);
  });

  it('refuses an upgrade that declares a body (400 invalid_upgrade naming the field), never forwarded', async () => {
    const before = upgrades.length;
    const head =
      'GET /ws/accept HTTP/1.1\r\nHost: acme.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
      'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
    const bodies = {
      'Content-Length': 'Content-Length: 5\r\n\r\nhello',
      'Transfer-Encoding': 'Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    };
    for (const [field, body] of Object.entries(bodies)) {
      const client = await connectRaw('plain', gateway.gateway.trafficPort);
      client.socket.write(head + body);
      await within(client.closed, 3_000, `the answer to an upgrade with ${field}`);
      const [statusLine = '', ...rest] = client.received().split('\r\n');
      expect(statusLine).toBe('HTTP/1.1 400 Bad Request');
      const error = JSON.parse(rest.join('\r\n').split('\r\n\r\n')[1] ?? '{}').error;
      expect(error.code).toBe('invalid_upgrade');
      expect(error.message).toContain(field);
    }
    expect(upgrades.length).toBe(before);
  });

  // Regression: node hands an upgrade to the gateway whatever its Expect, where any other request with
  // an expectation but 100-continue is answered 417; the upgrade was switched.
  it('refuses an upgrade with an expectation but 100-continue (417 expectation_failed), never forwarded', async () => {
    const before = upgrades.length;
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      'GET /ws/accept HTTP/1.1\r\nHost: acme.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nExpect: foo\r\n\r\n',
    );
    await within(client.closed, 3_000, 'the answer to an upgrade with Expect: foo');
    const [statusLine = '', ...rest] = client.received().split('\r\n');
    expect(statusLine).toBe('HTTP/1.1 417 Expectation Failed');
    expect(JSON.parse(rest.join('\r\n').split('\r\n\r\n')[1] ?? '{}').error.code).toBe('expectation_failed');
    expect(upgrades.length).toBe(before);
  });

  it('serves an HTTP/1.0 request offering a WebSocket upgrade as a plain request (RFC 9110 §7.8), never switched', async () => {
    const before = upgrades.length;
    const client = await connectRaw('plain', gateway.gateway.trafficPort);
    client.socket.write(
      'GET /ws/accept HTTP/1.0\r\nHost: acme.localhost\r\nConnection: keep-alive, Upgrade\r\n' +
        'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n' +
        'GET /ws/accept HTTP/1.0\r\nHost: acme.localhost\r\nConnection: keep-alive\r\n\r\n',
    );
    // The connection closes after the one answer (node reads no further than the offering request).
    await within(client.closed, 3_000, 'the answer to an HTTP/1.0 upgrade');
    const received = client.received();
    expect(received.slice(0, received.indexOf('\r\n'))).toBe('HTTP/1.1 200 OK');
    expect(received.slice(received.indexOf('\r\n\r\n') + 4)).toBe('plain');
    expect(upgrades.length).toBe(before);
  });

  it('refuses an upgrade without one well-formed Sec-WebSocket-Key (400 invalid_upgrade naming it), never forwarded', async () => {
    const before = upgrades.length;
    const keys = {
      missing: '',
      'not 16 bytes': 'Sec-WebSocket-Key: c2hvcnQ=\r\n',
      'given twice':
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\n',
    };
    for (const [which, key] of Object.entries(keys)) {
      const client = await connectRaw('plain', gateway.gateway.trafficPort);
      client.socket.write(
        'GET /ws/accept HTTP/1.1\r\nHost: acme.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
          `Sec-WebSocket-Version: 13\r\n${key}\r\n`,
      );
      await within(client.closed, 3_000, `the answer to an upgrade whose key is ${which}`);
      const [statusLine = '', ...rest] = client.received().split('\r\n');
      expect(statusLine, which).toBe('HTTP/1.1 400 Bad Request');
      const error = JSON.parse(rest.join('\r\n').split('\r\n\r\n')[1] ?? '{}').error;
      expect(error.code, which).toBe('invalid_upgrade');
      expect(error.message, which).toContain('Sec-WebSocket-Key');
    }
    expect(upgrades.length).toBe(before);
  });
});
