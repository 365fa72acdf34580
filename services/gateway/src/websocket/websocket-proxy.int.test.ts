import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { hashApiKey } from '@vantageedge/shared/domain/api-key-hash';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { MemoryLimitStore } from '../ratelimit/memory-limit-store.js';
import { createRateLimitStage } from '../ratelimit/rate-limit-stage.js';
import { createRateLimiter } from '../ratelimit/rate-limiter.js';
import { send, startTestGateway, TEST_PEPPER, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * WebSocket proxying against a real echo origin (the `ws` library) through a running gateway: the
 * upgrade is authenticated like any request (headers, or a browser's token in the query or a
 * subprotocol when the route opts in), rate limited at connect, refused for a revoked key, frames flow
 * both ways, and a stop closes open connections with 1001.
 */
interface Hello {
  origin: string;
  url: string;
  headers: IncomingHttpHeaders;
  protocol: string;
}

const KEY = 've_live_websocket_key_000000000000000000';
const tenantId = randomUUID();
const originId = randomUUID();
let echo: { server: Server; wss: WebSocketServer; url: string };
let gateway: TestGateway;
let dir: string;
let version = 1;

function snapshot(keys: string[]) {
  return buildSnapshot({
    tenantId,
    version: version++,
    subdomain: 'chat',
    origins: [{ id: originId, targets: [echo.url] }],
    routes: [
      { origin_id: originId, path_pattern: '/public/*' },
      { origin_id: originId, path_pattern: '/keyed/*', auth_mode: 'apikey_required' },
      {
        origin_id: originId,
        path_pattern: '/query/*',
        auth_mode: 'apikey_required',
        websocket_token: 'query',
      },
      {
        origin_id: originId,
        path_pattern: '/proto/*',
        auth_mode: 'apikey_required',
        websocket_token: 'subprotocol',
      },
      {
        origin_id: originId,
        path_pattern: '/limited/*',
        rate_limit: { requests_per_second: 0.01, burst: 1, scope: 'route' },
      },
      // The test's client connects from loopback.
      { origin_id: originId, path_pattern: '/office/*', ip_rules: { deny: ['127.0.0.0/8', '::1/128'] } },
      {
        origin_id: originId,
        path_pattern: '/down/*',
        fixed_response: { status: 503, headers: { 'retry-after': '60' }, body: 'maintenance' },
      },
      {
        origin_id: originId,
        path_pattern: '/transformed/*',
        rewrite_path: { from_prefix: '/transformed', to_prefix: '/sandbox' },
        request_headers: { remove: ['cookie'], set: { 'x-scope': 'public' } },
        query: { set: { role: 'guest' } },
        response_headers: { set: { 'x-transformed': 'yes' }, remove: ['x-origin-secret'] },
      },
    ],
    apiKeys: keys.map((key) => ({ key_hash: hashApiKey(TEST_PEPPER, key) })),
  });
}

/** A `ws` echo origin named `name`: it says its name in its hello and to plain HTTP requests. */
async function startEcho(name = 'echo'): Promise<typeof echo> {
  const server = createServer((_req, res) => res.writeHead(200).end(name));
  const wss = new WebSocketServer({
    server,
    handleProtocols: (protocols) => (protocols.has('chat') ? 'chat' : false),
  });
  wss.on('connection', (socket, req) => {
    const hello: Hello = {
      origin: name,
      url: req.url ?? '',
      headers: req.headers,
      protocol: socket.protocol,
    };
    socket.send(JSON.stringify(hello));
    socket.on('message', (data, binary) => socket.send(data, { binary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, wss, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface Opened {
  socket: WebSocket;
  hello: Hello;
}

/** Connects through the gateway; resolves with the origin's hello, or rejects with the HTTP status. */
function connect(
  pathAndQuery: string,
  options: { headers?: Record<string, string>; protocols?: string[]; base?: string; host?: string } = {},
): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(
      `${options.base ?? gateway.url.replace('http', 'ws')}${pathAndQuery}`,
      options.protocols ?? [],
      {
        headers: { host: options.host ?? 'chat.localhost', ...options.headers },
        rejectUnauthorized: false,
      },
    );
    socket.once('unexpected-response', (_req, res) => reject(new Error(`status ${res.statusCode}`)));
    socket.once('error', reject);
    socket.once('message', (data) => resolve({ socket, hello: JSON.parse(String(data)) as Hello }));
  });
}

function roundTrip(socket: WebSocket, message: string | Buffer): Promise<string | Buffer> {
  return new Promise((resolve) => {
    socket.once('message', (data, binary) => resolve(binary ? (data as Buffer) : String(data)));
    socket.send(message);
  });
}

beforeAll(async () => {
  echo = await startEcho();
  dir = await mkdtemp(path.join(tmpdir(), 'gateway-ws-'));
  const cert = await selfSignedTestCertificate({ dnsNames: ['*.localhost'] });
  await writeFile(path.join(dir, 'cert.pem'), cert.chainPem);
  await writeFile(path.join(dir, 'key.pem'), cert.privateKeyPem);
  const limiterRegistry = new Registry();
  const rateLimitStage = createRateLimitStage(
    createRateLimiter({
      store: new MemoryLimitStore({ maxKeys: 1000 }),
      registry: limiterRegistry,
      logger: createLogger({ service: 'ws-test', level: 'error' }),
    }),
  );
  gateway = await startTestGateway(
    {
      GATEWAY_TLS_PORT: '0',
      GATEWAY_TLS_CERT_FILE: path.join(dir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(dir, 'key.pem'),
    },
    { stages: [rateLimitStage] },
  );
  gateway.store.apply(snapshot([KEY]));
});

afterAll(async () => {
  await gateway?.close();
  echo?.wss.close();
  await new Promise<void>((resolve) => (echo ? echo.server.close(() => resolve()) : resolve()));
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('WebSocket proxying', () => {
  it('relays text and binary frames both ways on a public route, with the forwarding headers', async () => {
    const { socket, hello } = await connect('/public/room?x=1');
    expect(hello.url).toBe('/public/room?x=1');
    expect(hello.headers['x-vantageedge-tenant-id']).toBe(tenantId);
    expect(hello.headers['x-forwarded-proto']).toBe('http');
    expect(await roundTrip(socket, 'hello')).toBe('hello');
    const binary = randomBytes(100_000);
    expect(Buffer.compare((await roundTrip(socket, binary)) as Buffer, binary)).toBe(0);
    socket.close();
  });

  /**
   * Regression: `Upgrade: websocket` on a GET switched the route's request transforms off (the origin got
   * the original path, the cookie the route removes, the query it overrides), and a non-101 answer to the
   * attempt was relayed as the origin sent it.
   */
  it('applies the route’s request transforms to an upgrade (path, headers, query)', async () => {
    const { socket, hello } = await connect('/transformed/room?role=admin&x=1', {
      headers: { cookie: 'session=victim' },
    });
    expect(hello.url).toBe('/sandbox/room?role=guest&x=1');
    expect(hello.headers.cookie).toBeUndefined();
    expect(hello.headers['x-scope']).toBe('public');
    socket.close();
  });

  it('relays an origin’s refusal of an upgrade with the route’s response transforms applied', async () => {
    // A WebSocket version it does not speak: the origin (ws) refuses the handshake with a 400.
    const answer = await new Promise<{ status: number; headers: IncomingHttpHeaders }>((resolve, reject) => {
      const req = httpRequest(`${gateway.url}/transformed/room`, {
        headers: {
          host: 'chat.localhost',
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '7',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          cookie: 'a=b',
        },
      });
      req.once('response', (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
      });
      req.once('upgrade', () => reject(new Error('upgraded')));
      req.once('error', reject);
      req.end();
    });
    expect(answer.status).toBe(400);
    expect(answer.headers['x-transformed']).toBe('yes');
  });

  it('authenticates the upgrade: no key is a 401 at connect, a header key connects and is not forwarded', async () => {
    await expect(connect('/keyed/a')).rejects.toThrow('status 401');
    const { socket, hello } = await connect('/keyed/a', { headers: { 'x-api-key': KEY } });
    expect(hello.headers['x-api-key']).toBeUndefined();
    expect(hello.headers['x-vantageedge-auth-kind']).toBe('api_key');
    socket.close();
  });

  it('takes a browser token from ?access_token= only where the route opts in, and strips it', async () => {
    const { socket, hello } = await connect(`/query/a?access_token=${KEY}&room=7`);
    expect(hello.url).toBe('/query/a?room=7');
    socket.close();
    await expect(connect(`/keyed/a?access_token=${KEY}`)).rejects.toThrow('status 401');
  });

  /**
   * Regression: the token was cut out by parsing the query and writing it again, so the origin got
   * every other parameter re-encoded (`%20` as `+`, `/` as `%2F`, `flag` as `flag=`: a signed URL no
   * longer verified), and `ACCESS_TOKEN`, `access.token` or `access_token[]` (the same parameter to
   * ASP.NET, PHP, Rails) or a `;`-separated `access_token` (Go before 1.17, Python before 3.9.2) with it.
   */
  it('regression: strips the browser token in every spelling an origin reads, and forwards the rest of the query byte for byte', async () => {
    const rest = 'room=a%20b&path=/x/y&flag&sig=a%2Bb';
    const { socket, hello } = await connect(
      `/query/a?${rest}&access_token=${KEY}&ACCESS_TOKEN=${KEY}&access.token=${KEY}&access_token[]=${KEY}&x=1;access_token=${KEY}`,
    );
    expect(hello.url).toBe(`/query/a?${rest}&x=1`);
    socket.close();
  });

  it('takes a browser token from a Sec-WebSocket-Protocol entry where the route opts in, and strips it', async () => {
    const { socket, hello } = await connect('/proto/a', { protocols: ['chat', `vantageedge.token.${KEY}`] });
    expect(socket.protocol).toBe('chat');
    expect(hello.headers['sec-websocket-protocol']).toBe('chat');
    socket.close();
  });

  it('regression: strips every token entry of Sec-WebSocket-Protocol, not only the one it reads', async () => {
    const { socket, hello } = await connect('/proto/a', {
      protocols: [`vantageedge.token.${KEY}`, 'chat', 'vantageedge.token.another-key'],
    });
    expect(hello.headers['sec-websocket-protocol']).toBe('chat');
    socket.close();
  });

  it('refuses a revoked key at connect', async () => {
    const { socket } = await connect('/keyed/b', { headers: { 'x-api-key': KEY } });
    socket.close();
    gateway.store.apply(snapshot([]));
    await expect(connect('/keyed/b', { headers: { 'x-api-key': KEY } })).rejects.toThrow('status 401');
    gateway.store.apply(snapshot([KEY]));
  });

  it('rate limits upgrades at connect (429)', async () => {
    const first = await connect('/limited/a');
    first.socket.close();
    await expect(connect('/limited/a')).rejects.toThrow('status 429');
  });

  // Regression: an upgrade ran only authentication and the rate limit of its route, so a denied address
  // reached the origin over a WebSocket, and a route in maintenance mode still connected.
  it('refuses an upgrade from a denied address (403) and answers a route in maintenance mode (503)', async () => {
    await expect(connect('/office/a')).rejects.toThrow('status 403');
    await expect(connect('/down/a')).rejects.toThrow('status 503');
  });

  it('proxies wss:// on the TLS listener', async () => {
    const { socket, hello } = await connect('/public/tls', {
      base: `wss://127.0.0.1:${gateway.gateway.tlsPort}`,
    });
    expect(hello.headers['x-forwarded-proto']).toBe('https');
    expect(await roundTrip(socket, 'over tls')).toBe('over tls');
    socket.close();
  });

  it('counts upgrades by status and open connections', async () => {
    const { socket } = await connect('/public/metrics');
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      new RegExp(`vantageedge_gateway_websocket_upgrades_total\\{tenant="${tenantId}",status="101"\\} [1-9]`),
    );
    expect(metrics).toMatch(
      new RegExp(`vantageedge_gateway_websocket_upgrades_total\\{tenant="${tenantId}",status="401"\\} [1-9]`),
    );
    expect(metrics).toMatch(
      new RegExp(`vantageedge_gateway_websocket_connections_open\\{tenant="${tenantId}"\\} [1-9]`),
    );
    socket.close();
  });

  it('an open WebSocket counts as a connection for least_connections: plain requests go to the other target', async () => {
    const [left, right] = await Promise.all([startEcho('left'), startEcho('right')]);
    try {
      const balancedOrigin = randomUUID();
      gateway.store.apply(
        buildSnapshot({
          subdomain: 'balanced',
          origins: [
            {
              id: balancedOrigin,
              targets: [left.url, right.url],
              load_balancing: { algorithm: 'least_connections' },
            },
          ],
          routes: [{ origin_id: balancedOrigin, path_pattern: '/*' }],
        }),
      );
      const held = await connect('/live', { host: 'balanced.localhost' });
      const other = held.hello.origin === 'left' ? 'right' : 'left';
      // Ties alternate between targets; with the WebSocket's target busy every request goes elsewhere.
      const answeredBy: string[] = [];
      for (let i = 0; i < 4; i++) {
        const response = await send(gateway, 'balanced.localhost', `/plain/${i}`);
        answeredBy.push(response.text);
      }
      expect(answeredBy).toEqual([other, other, other, other]);
      const closed = new Promise<void>((resolve) => held.socket.once('close', () => resolve()));
      held.socket.close();
      await closed;
    } finally {
      for (const target of [left, right]) {
        for (const client of target.wss.clients) client.terminate();
        target.wss.close();
        target.server.closeAllConnections();
        await new Promise<void>((resolve) => target.server.close(() => resolve()));
      }
    }
  });

  it('a stop closes open connections with 1001 (going away)', async () => {
    const { socket } = await connect('/public/last');
    const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)));
    await gateway.close();
    expect(await closed).toBe(1001);
  });
});

describe('WebSocket idle timeout', () => {
  it('a connection with no frame either way for GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS is closed with 1001', async () => {
    const idleEcho = await startEcho('idle');
    const idleGateway = await startTestGateway({ GATEWAY_WEBSOCKET_IDLE_TIMEOUT_SECONDS: '0.5' });
    try {
      const idleOrigin = randomUUID();
      idleGateway.store.apply(
        buildSnapshot({
          subdomain: 'idle',
          origins: [{ id: idleOrigin, targets: [idleEcho.url] }],
          routes: [{ origin_id: idleOrigin, path_pattern: '/*' }],
        }),
      );
      const opened = await connect('/quiet', {
        base: idleGateway.url.replace('http', 'ws'),
        host: 'idle.localhost',
      });
      const closed = await new Promise<{ code: number; reason: string }>((resolve) =>
        opened.socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
      );
      expect(closed).toEqual({ code: 1001, reason: 'idle timeout' });
    } finally {
      await idleGateway.close();
      for (const client of idleEcho.wss.clients) client.terminate();
      idleEcho.wss.close();
      idleEcho.server.closeAllConnections();
      await new Promise<void>((resolve) => idleEcho.server.close(() => resolve()));
    }
  });
});
