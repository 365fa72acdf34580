import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestGateway, TEST_PEPPER, type TestGateway } from '../testing/gateway-harness.js';
import { CLIENT_CLOSE, extendedConnect, opened, openSession } from '../testing/http2-websockets.js';
import { pause, within } from '../testing/raw-connections.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { startWebSocketOrigin, type WebSocketOrigin } from '../testing/websocket-origins.js';

/**
 * WebSockets over HTTP/2 (RFC 8441 extended CONNECT), as browsers open them on a connection they already
 * hold once the gateway's SETTINGS announce SETTINGS_ENABLE_CONNECT_PROTOCOL: the stream is an upgrade
 * like an HTTP/1.1 one (route, authentication, the tenant's WebSocket limit), the origin is asked with
 * an HTTP/1.1 upgrade, and frames flow between the stream and the origin's connection.
 * Regression: an extended CONNECT declaring a content-length was opened, its content-length passed on
 * in the origin's upgrade request (refused 400 over HTTP/1.1): an origin reads that many bytes of the
 * first frames as the upgrade's body, and the stream was reset at the client's first message.
 */
const KEY = 've_live_h2_websocket_key_0000000000000000';
const LIMIT = 2;

/** A `ws` echo origin: says hello (with the path it was asked for), refuses `/ws/refuse` 403. */
function startEcho(): Promise<WebSocketOrigin> {
  return startWebSocketOrigin({
    hello: (path) => `hello ${path}`,
    refuse: (path) => (path === '/ws/refuse' ? 403 : undefined),
  });
}

describe('WebSockets over HTTP/2 (extended CONNECT)', () => {
  const tenantId = randomUUID();
  const originId = randomUUID();
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  let dir: string | undefined;
  const sessions: ClientHttp2Session[] = [];

  /** The tenant's open WebSockets, as the gateway's /metrics shows them. */
  const openWebSockets = async () => {
    const text = await gateway.registry.metrics();
    const match = text.match(
      new RegExp(`vantageedge_gateway_websocket_connections_open\\{tenant="${tenantId}"\\} (\\d+)`),
    );
    return match ? Number(match[1]) : 0;
  };

  const session = async () => {
    const opened = await openSession(gateway.url);
    sessions.push(opened.session);
    return opened;
  };

  beforeAll(async () => {
    echo = await startEcho();
    const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost', 'localhost'] });
    dir = await mkdtemp(path.join(tmpdir(), 'gateway-h2-websockets-'));
    await writeFile(path.join(dir, 'cert.pem'), certificate.chainPem);
    await writeFile(path.join(dir, 'key.pem'), certificate.privateKeyPem);
    gateway = await startTestGateway({
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
      GATEWAY_H2C: 'true',
      GATEWAY_MAX_WEBSOCKETS_PER_TENANT: String(LIMIT),
      GATEWAY_WEBSOCKET_CLIENT_SHARE: '1',
    });
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'chat',
        origins: [{ id: originId, targets: [echo.url] }],
        routes: [
          { origin_id: originId, path_pattern: '/ws/*' },
          { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
        ],
        apiKeys: [{ key_hash: hashApiKey(TEST_PEPPER, KEY) }],
      }),
    );
  });

  afterEach(async () => {
    for (const opened of sessions.splice(0)) opened.destroy();
    // Every slot of the tenant's limit is back before the next test.
    await vi.waitFor(async () => expect(await openWebSockets()).toBe(0), { timeout: 5_000 });
  });

  afterAll(async () => {
    await gateway?.close();
    await echo?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('announces extended CONNECT, reaches the origin with an HTTP/1.1 upgrade and relays frames both ways', async () => {
    const { session: client, offered } = await session();
    expect(offered).toBe(true);
    await expectEcho(client, '/ws/room?x=1');
  });

  it('regression: writes no listener-leak warning for a WebSocket’s stream (one per stream flooded the log)', async () => {
    const warnings: string[] = [];
    const heard = (warning: Error) => {
      if (warning.name === 'MaxListenersExceededWarning') warnings.push(warning.message);
    };
    process.on('warning', heard);
    try {
      const { session: client } = await session();
      await expectEcho(client, '/ws/warnings');
      // process.emitWarning delivers on the next turn.
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off('warning', heard);
    }
    expect(warnings).toEqual([]);
  });

  it('proxies the WebSocket on the TLS listener’s HTTP/2 as on h2c, and reports it like an upgrade', async () => {
    const { session: client, offered } = await openSession(`https://127.0.0.1:${gateway.gateway.tlsPort}`);
    sessions.push(client);
    expect(offered).toBe(true);
    await expectEcho(client, '/ws/room?x=1');
  });

  /** An HTTP/2 WebSocket on `client` that the origin greets and echoes, then closed, as the access log records it. */
  async function expectEcho(client: ClientHttp2Session, path: string): Promise<void> {
    const attempt = await extendedConnect(client, path);
    expect(attempt.status).toBe(200);
    expect(attempt.headers['x-request-id']).toMatch(/.+/);
    expect(attempt.headers['sec-websocket-accept']).toBeUndefined();
    const socket = opened(attempt);
    expect(await socket.nextText()).toBe(`hello ${path}`);
    socket.send('ping over h2');
    expect(await socket.nextText()).toBe('ping over h2');

    const upgrade = echo.upgrades.at(-1)!;
    expect(upgrade.upgrade).toBe('websocket');
    expect(upgrade['sec-websocket-key']).toMatch(/^[A-Za-z0-9+/]{22}==$/);

    // The same session still serves plain requests next to the WebSocket.
    const plain = client.request({ ':path': '/ws/plain', ':authority': 'chat.localhost' });
    const status = await new Promise<number>((resolve) =>
      plain.once('response', (headers) => resolve(Number(headers[':status']))),
    );
    plain.resume();
    expect(status).toBe(200);

    // Its access-log line is written when it ends, as an HTTP/1.1 WebSocket's.
    socket.stream.end(CLIENT_CLOSE);
    await socket.ended;
    const line = () =>
      gateway.logLines.find(
        (entry) => entry.request_id === attempt.headers['x-request-id'] && entry.kind === 'access',
      );
    await vi.waitFor(() => expect(line()).toBeDefined(), { timeout: 5_000 });
    expect(line()).toMatchObject({
      route_id: expect.any(String),
      status: 101,
      close_code: 1000,
      closed_by: 'client',
    });
  }

  it('refuses an unauthenticated WebSocket 401 before the origin is asked; a key connects', async () => {
    const { session: client } = await session();
    const before = echo.upgrades.length;
    const refused = await extendedConnect(client, '/keyed/room');
    expect(refused.status).toBe(401);
    expect('body' in refused && JSON.parse(refused.body).error.code).toBe('missing_credentials');
    expect(echo.upgrades.length).toBe(before);

    const socket = opened(await extendedConnect(client, '/keyed/room', { 'x-api-key': KEY }));
    expect(await socket.nextText()).toBe('hello /keyed/room');
    expect(echo.upgrades.at(-1)!['x-api-key']).toBeUndefined();
  });

  it('relays an origin’s refusal as its status', async () => {
    const { session: client } = await session();
    const refused = await extendedConnect(client, '/ws/refuse');
    expect(refused).toMatchObject({ status: 403, body: 'no' });
  });

  it('counts HTTP/2 WebSockets (h2c and TLS) in the tenant’s limit, and gives the slot back when one closes', async () => {
    const { session: client } = await session();
    const { session: overTls } = await openSession(`https://127.0.0.1:${gateway.gateway.tlsPort}`);
    sessions.push(overTls);
    const first = opened(await extendedConnect(client, '/ws/1'));
    const second = opened(await extendedConnect(overTls, '/ws/2'));
    await first.nextText();
    await second.nextText();
    for (const at of [client, overTls]) {
      const refused = await extendedConnect(at, '/ws/3');
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect('body' in refused && JSON.parse(refused.body).error.code).toBe('websocket_limit');
    }

    first.stream.close();
    await first.ended;
    await vi.waitFor(async () => expect(await openWebSockets()).toBe(1), { timeout: 5_000 });
    const again = opened(await extendedConnect(client, '/ws/4'));
    expect(await again.nextText()).toBe('hello /ws/4');
  });

  it('a client closing its stream closes the origin’s connection', async () => {
    const { session: client } = await session();
    const socket = opened(await extendedConnect(client, '/ws/client-closes'));
    await socket.nextText();
    const [originSocket] = [...echo.wss.clients].slice(-1);
    const originClosed = new Promise<void>((resolve) => originSocket!.once('close', () => resolve()));
    socket.stream.end(CLIENT_CLOSE);
    await within(originClosed, 5_000, 'the origin’s WebSocket to close');
    await within(socket.ended, 5_000, 'the client’s stream to end');
  });

  it('the origin’s close frame reaches the client, and the origin’s connection ending ends the client’s stream', async () => {
    const { session: client } = await session();
    const socket = opened(await extendedConnect(client, '/ws/origin-closes'));
    await socket.nextText();
    const [originSocket] = [...echo.wss.clients].slice(-1);
    originSocket!.close(4000, 'bye');
    const closeFrame = await socket.nextText();
    expect(closeFrame.slice(2)).toBe('bye');
    socket.stream.end(CLIENT_CLOSE);
    await within(socket.ended, 5_000, 'the client’s stream to end after the closing handshake');

    const dropped = opened(await extendedConnect(client, '/ws/origin-drops'));
    await dropped.nextText();
    [...echo.wss.clients].at(-1)!.terminate();
    await within(dropped.ended, 5_000, 'the client’s stream to end when the origin drops');
  });

  it('regression: refuses a WebSocket that declares a content-length (400 invalid_upgrade naming it), never forwarded, as over HTTP/1.1', async () => {
    const { session: client } = await session();
    const before = echo.upgrades.length;
    const declared = await extendedConnect(client, '/ws/declares-body', { 'content-length': '6' });
    expect(declared.status).toBe(400);
    const error = 'body' in declared ? JSON.parse(declared.body).error : undefined;
    expect(error.code).toBe('invalid_upgrade');
    expect(error.message).toContain('Content-Length');
    expect(echo.upgrades.length).toBe(before);
    // A content-length of 0 declares no body: such a WebSocket opens, as over HTTP/1.1.
    const empty = opened(await extendedConnect(client, '/ws/declares-none', { 'content-length': '0' }));
    expect(await empty.nextText()).toBe('hello /ws/declares-none');
  });

  // Regression: a WebSocket named a URI of another scheme than its connection's (ftp, or http over
  // TLS) and opened, where any other request naming it is refused 400 invalid_scheme.
  it('refuses a WebSocket whose :scheme its connection does not carry (400 invalid_scheme), as any request', async () => {
    const { session: cleartext } = await session();
    const before = echo.upgrades.length;
    const ftp = await extendedConnect(cleartext, '/ws/ftp', { ':scheme': 'ftp' });
    expect(ftp.status).toBe(400);
    expect('body' in ftp && JSON.parse(ftp.body).error.code).toBe('invalid_scheme');
    const { session: overTls } = await openSession(`https://127.0.0.1:${gateway.gateway.tlsPort}`);
    try {
      const http = await extendedConnect(overTls, '/ws/http-over-tls', { ':scheme': 'http' });
      expect(http.status).toBe(400);
      expect('body' in http && JSON.parse(http.body).error.code).toBe('invalid_scheme');
      const https = opened(await extendedConnect(overTls, '/ws/https', { ':scheme': 'https' }));
      expect(await https.nextText()).toBe('hello /ws/https');
    } finally {
      overTls.destroy();
    }
    expect(echo.upgrades.length).toBe(before + 1);
  });

  it('still refuses a plain CONNECT 405 and another :protocol 400, naming the field', async () => {
    const { session: client } = await session();
    const plain = await extendedConnect(client, '/ws/x', {}, null);
    expect(plain.status).toBe(405);
    expect('body' in plain && JSON.parse(plain.body).error.code).toBe('method_not_supported');
    const other = await extendedConnect(client, '/ws/x', {}, 'webtransport');
    expect(other.status).toBe(400);
    const error = 'body' in other ? JSON.parse(other.body).error : undefined;
    expect(error.code).toBe('unsupported_protocol');
    expect(error.message).toContain(':protocol');
  });
});

describe('an HTTP/2 WebSocket’s lifetime', () => {
  let echo: WebSocketOrigin;
  let gateway: TestGateway;
  let client: ClientHttp2Session | undefined;

  beforeAll(async () => {
    echo = await startEcho();
    gateway = await startTestGateway({
      GATEWAY_H2C: 'true',
      // A stream whose request has not ended by then is answered 408 and reset, unless it is a WebSocket.
      GATEWAY_REQUEST_TIMEOUT_MS: '200',
      GATEWAY_HEADERS_TIMEOUT_MS: '200',
      GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '1',
    });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'chat',
        origins: [{ id: originId, targets: [echo.url] }],
        routes: [{ origin_id: originId, path_pattern: '/ws/*' }],
      }),
    );
  });

  afterAll(async () => {
    client?.destroy();
    await gateway?.close();
    await echo?.close();
  });

  it('outlives the request timeout, and is closed 1001 once idle for the WebSocket idle timeout', async () => {
    client = (await openSession(gateway.url)).session;
    const socket = opened(await extendedConnect(client, '/ws/long'));
    expect(await socket.nextText()).toBe('hello /ws/long');
    for (const message of ['one', 'two', 'three']) {
      await pause(100);
      socket.send(message);
      expect(await socket.nextText()).toBe(message);
    }

    const close = await within(socket.nextFrame(), 5_000, 'the gateway’s close frame');
    expect(close.opcode).toBe(0x8);
    expect(close.payload.readUInt16BE(0)).toBe(1001);
  });
});
