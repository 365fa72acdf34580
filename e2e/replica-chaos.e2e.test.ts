import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import type { TenantSnapshot } from '@vantageedge/shared/domain/gateway-config';
import {
  type PrivateRedisServer,
  startPrivateRedisServer,
} from '@vantageedge/shared/redis/private-redis-server';
import { selfSignedTestCertificate } from '@vantageedge/shared/testing/test-certificates';
import { http2Connect, http2Request } from '@vantageedge/shared/testing/tls-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, sleep } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Chaos against a real replica: seeded random clients (HTTP/1.1, h2c, TLS with HTTP/1.1 and h2; pipelined
 * requests, chunked, oversized and slow bodies, resets at random moments, upgrades, RST_STREAM,
 * half-closes, garbage, TLS alerts and cut handshakes) meet a raw TCP origin that answers correctly,
 * slowly, with resets mid-body, a 1xx then a reset, a 101 then garbage, wrong framing or never, on routes
 * with a stale-while-revalidate cache, retries, a body limit, a traffic split and WebSockets, while the
 * tenant's config changes under them (origins removed, routes edited, the tenant deleted and created
 * again) and its Redis (a private one) is stopped and started again. The replica serves every tenant: it must never log an uncaught exception or an unhandled
 * rejection, never exit, and still serve another tenant at the end.
 *
 * CHAOS_SEEDS=1,2,3 (and CHAOS_OPERATIONS=n) replays or widens the search; a failure names its seed.
 */
const SEEDS = (process.env['CHAOS_SEEDS'] ?? '20261205,7').split(',').map((seed) => Number(seed.trim()));
const OPERATIONS = Number(process.env['CHAOS_OPERATIONS'] ?? 60);
const LANES = 8;
/**
 * Longest an operation's connections are kept before the client goes away; an operation ends sooner
 * once none of them is open.
 */
const OPERATION_MS = 1_500;
const BODY_LIMIT = 256;
const CHAOS_HOST = 'chaos.localhost';

const ORIGIN_BEHAVIOURS = [
  'ok',
  'slow',
  'reset-mid-body',
  'informational-then-reset',
  'switching-then-garbage',
  'wrong-framing',
  'never',
  'garbage',
] as const;
type OriginBehaviour = (typeof ORIGIN_BEHAVIOURS)[number];
const ROUTE_PREFIXES = ['/cached', '/retried', '/limited', '/split', '/plain'] as const;

type Random = () => number;
/** mulberry32: small, fast and the same on every machine. */
function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const between = (random: Random, min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const randomBytes = (random: Random, length: number) =>
  Buffer.from(Array.from({ length }, () => Math.floor(random() * 256)));

// ---------------------------------------------------------------------------------------------------
// The origin: raw TCP, one request per connection, answered as the path's /b/<behaviour>/<n> says.

const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** Requests the origin got, by the behaviour it answered them with. */
const originAnswered = new Map<string, number>();

function answer(socket: net.Socket, head: string): void {
  const target = /^[A-Z]+ (\S+)/.exec(head)?.[1] ?? '/';
  const behaviour = (/\/b\/([a-z-]+)/.exec(target)?.[1] ?? 'ok') as OriginBehaviour;
  originAnswered.set(behaviour, (originAnswered.get(behaviour) ?? 0) + 1);
  const variant = Number(/\/b\/[a-z-]+\/(\d+)/.exec(target)?.[1] ?? 0);
  const random = seededRandom(variant);
  const key = /^sec-websocket-key:\s*(\S+)/im.exec(head)?.[1];
  const later = (ms: number, then: () => void) => setTimeout(then, ms).unref();
  switch (behaviour) {
    case 'ok':
      if (key !== undefined) {
        const accept = createHash('sha1').update(`${key}${WEBSOCKET_GUID}`).digest('base64');
        socket.write(
          'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
        );
        socket.write(Buffer.from([0x81, 5, ...Buffer.from('hello')]));
        return;
      }
      // Stored, or not (a stale-while-revalidate refresh answered so leaves the entry as it was).
      socket.end(
        pick(random, [
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nCache-Control: max-age=1\r\n\r\nok',
          'HTTP/1.1 500 Oops\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno',
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nCache-Control: no-store\r\n\r\nok',
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\nSet-Cookie: a=b\r\n\r\nok',
        ]),
      );
      return;
    case 'slow': {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 64\r\nConnection: close\r\n\r\n');
      let sent = 0;
      const next = () => {
        if (socket.destroyed) return;
        socket.write('x'.repeat(8));
        sent += 8;
        if (sent < 64) later(between(random, 20, 150), next);
        else socket.end();
      };
      later(between(random, 20, 150), next);
      return;
    }
    case 'reset-mid-body':
      socket.write(
        `HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nCache-Control: max-age=1\r\n\r\n${'y'.repeat(100)}`,
      );
      later(between(random, 0, 50), () => socket.resetAndDestroy());
      return;
    case 'informational-then-reset':
      socket.write(
        random() < 0.5
          ? 'HTTP/1.1 100 Continue\r\n\r\n'
          : 'HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n',
      );
      later(between(random, 0, 50), () => socket.resetAndDestroy());
      return;
    case 'switching-then-garbage':
      socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n');
      socket.write(randomBytes(random, between(random, 1, 200)));
      later(between(random, 0, 100), () => (random() < 0.5 ? socket.end() : socket.resetAndDestroy()));
      return;
    case 'wrong-framing':
      socket.end(
        pick(random, [
          'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
          'HTTP/1.1 200 OK\r\nContent-Length: 500\r\nCache-Control: max-age=1\r\n\r\nshort',
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n',
          'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc',
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n',
          'HTTP/1.1 2000 Huge\r\nContent-Length: 0\r\n\r\n',
        ]),
      );
      return;
    case 'never':
      return;
    case 'garbage':
      socket.end(randomBytes(random, between(random, 1, 300)));
      return;
  }
}

function startChaosOrigin(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let head = '';
    const onHead = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 65_536) socket.destroy();
        return;
      }
      socket.off('data', onHead);
      // Request bodies and WebSocket frames are read and dropped.
      socket.on('data', () => {});
      answer(socket, head.slice(0, end));
    };
    socket.on('data', onHead);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        close: () => {
          for (const socket of sockets) socket.destroy();
          return new Promise<void>((done) => server.close(() => done()));
        },
      }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------
// The tenants.

const chaosTenantId = randomUUID();
const firstOriginId = randomUUID();
const secondOriginId = randomUUID();
let chaosOriginUrl = '';
let version = 1;
let chaosDeleted = false;

const alwaysTried = {
  timeout_seconds: 2,
  circuit_breaker: { enabled: false },
  health_check: { active: { enabled: false }, passive: { enabled: false } },
};

type ConfigChange = 'full' | 'origin-removed' | 'routes-edited' | 'tenant-deleted';
type Change = ConfigChange | 'redis-stopped';

function chaosSnapshot(change: Exclude<ConfigChange, 'tenant-deleted'>): TenantSnapshot {
  const edited = change === 'routes-edited';
  const origins = [{ id: firstOriginId, targets: [chaosOriginUrl], ...alwaysTried }];
  if (change !== 'origin-removed')
    origins.push({ id: secondOriginId, targets: [chaosOriginUrl], ...alwaysTried });
  const main = change === 'origin-removed' ? firstOriginId : secondOriginId;
  return buildSnapshot({
    tenantId: chaosTenantId,
    version,
    subdomain: 'chaos',
    origins,
    routes: [
      {
        origin_id: firstOriginId,
        path_pattern: '/cached/*',
        cache_policy: { mode: 'override', ttl_seconds: edited ? 2 : 1, stale_while_revalidate_seconds: 600 },
      },
      {
        origin_id: main,
        path_pattern: '/retried/*',
        retries: { attempts: edited ? 2 : 3, backoff: { base_ms: 0, max_ms: 0 } },
        rate_limit: {
          requests_per_second: 1000,
          burst: 100_000,
          on_store_failure: edited ? 'closed' : 'open',
        },
      },
      { origin_id: main, path_pattern: '/limited/*', max_body_bytes: edited ? BODY_LIMIT * 2 : BODY_LIMIT },
      change === 'origin-removed'
        ? { origin_id: firstOriginId, path_pattern: '/split/*' }
        : {
            origin_id: firstOriginId,
            path_pattern: '/split/*',
            traffic_split: {
              origins: [
                { origin_id: firstOriginId, weight: edited ? 1 : 3 },
                { origin_id: secondOriginId, weight: 1 },
              ],
            },
          },
      { origin_id: edited ? firstOriginId : main, path_pattern: '/*' },
    ],
  });
}

async function changeConfig(change: ConfigChange): Promise<void> {
  version++;
  if (change === 'tenant-deleted') {
    chaosDeleted = true;
    await gateway.publish([{ kind: 'tombstone', tenantId: chaosTenantId, version: BigInt(version) }]);
    return;
  }
  chaosDeleted = false;
  const snapshot = chaosSnapshot(change);
  await gateway.publish([{ kind: 'snapshot', tenantId: chaosTenantId, version: BigInt(version), snapshot }]);
}

let gateway: LoneGateway;
let redis: PrivateRedisServer;
let tlsPort = 0;
let certificateDir = '';
let chaosOrigin: Awaited<ReturnType<typeof startChaosOrigin>>;
let controlOrigin: http.Server;
/** The first bytes a TLS client sends (its ClientHello), to cut or spoil at any point. */
let clientHello: Buffer = Buffer.alloc(0);

async function recordClientHello(): Promise<Buffer> {
  return new Promise((resolve) => {
    const server = createServer((socket) => {
      socket.once('data', (chunk: Buffer) => {
        resolve(chunk);
        socket.destroy();
        server.close();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const client = tls.connect({
        host: '127.0.0.1',
        port: (server.address() as net.AddressInfo).port,
        servername: CHAOS_HOST,
        ALPNProtocols: ['h2', 'http/1.1'],
      });
      client.on('error', () => {});
    });
  });
}

beforeAll(async () => {
  certificateDir = await mkdtemp(path.join(tmpdir(), 'replica-chaos-'));
  const certificate = await selfSignedTestCertificate({ dnsNames: ['*.localhost'] });
  await writeFile(path.join(certificateDir, 'cert.pem'), certificate.chainPem);
  await writeFile(path.join(certificateDir, 'key.pem'), certificate.privateKeyPem);
  chaosOrigin = await startChaosOrigin();
  chaosOriginUrl = chaosOrigin.url;
  controlOrigin = http.createServer((req, res) => {
    req.resume();
    res.end('served');
  });
  await new Promise<void>((resolve) => controlOrigin.listen(0, '127.0.0.1', resolve));
  const controlId = randomUUID();
  clientHello = await recordClientHello();
  redis = await startPrivateRedisServer();
  tlsPort = await freePort();
  gateway = await startLoneGateway({
    env: {
      REDIS_URL: redis.url,
      // Every client here is 127.0.0.1: without this, one address may hold only part of a target's pool
      // and a crowd's requests past it are refused instead of waiting for a connection.
      GATEWAY_UPSTREAM_CLIENT_SHARE: '0',
      GATEWAY_H2C: 'true',
      GATEWAY_HTTP2_WEBSOCKETS: 'true',
      GATEWAY_TLS_PORT: String(tlsPort),
      GATEWAY_TLS_CERT_FILE: path.join(certificateDir, 'cert.pem'),
      GATEWAY_TLS_KEY_FILE: path.join(certificateDir, 'key.pem'),
      GATEWAY_HEADERS_TIMEOUT_MS: '2000',
      GATEWAY_REQUEST_TIMEOUT_MS: '4000',
      // Only errors matter here: the access log would bury them.
      GATEWAY_ACCESS_LOG_SAMPLE_RATE: '0',
    },
    snapshots: [
      chaosSnapshot('full'),
      buildSnapshot({
        subdomain: 'control',
        origins: [
          {
            id: controlId,
            targets: [`http://127.0.0.1:${(controlOrigin.address() as net.AddressInfo).port}`],
            ...alwaysTried,
          },
        ],
        routes: [{ origin_id: controlId, path_pattern: '/*' }],
      }),
    ],
  });
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await chaosOrigin?.close();
  await redis?.stop();
  controlOrigin?.closeAllConnections();
  await new Promise<void>((resolve) => (controlOrigin ? controlOrigin.close(() => resolve()) : resolve()));
  if (certificateDir) await rm(certificateDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------
// The clients. Each operation opens what it likes, acts within OPERATION_MS and then has every
// connection it opened destroyed.

/** A connection or a session: closed when its client leaves, destroyed when the operation ends. */
interface OwnedResource {
  destroy(): void;
  once(event: 'close', listener: () => void): unknown;
}

interface Operation {
  random: Random;
  /** Registers a connection or a session to be destroyed when the operation ends. */
  own<T extends OwnedResource>(resource: T): T;
}

const origins = (random: Random) => `/b/${pick(random, ORIGIN_BEHAVIOURS)}/${between(random, 0, 1_000_000)}`;
const requestPath = (random: Random) => `${pick(random, ROUTE_PREFIXES)}${origins(random)}`;

function rawConnection(op: Operation, secure: boolean): net.Socket {
  const socket = secure
    ? tls.connect({
        host: '127.0.0.1',
        port: tlsPort,
        servername: CHAOS_HOST,
        rejectUnauthorized: false,
        ALPNProtocols: ['http/1.1'],
      })
    : tcpConnect(gateway.port, '127.0.0.1');
  socket.on('error', () => {});
  socket.on('data', () => {});
  return op.own(socket);
}

/** A reset (TCP RST); node resets only plain TCP connections, so a TLS one is closed at once. */
const reset = (socket: net.Socket) =>
  socket instanceof tls.TLSSocket ? socket.destroy() : socket.resetAndDestroy();

/** A client's way out: a reset, a half-close, a plain close, or staying until the operation ends. */
function leaveLater(op: Operation, socket: net.Socket): void {
  // Races hide in the first moments of a request: half of the clients leave within 30 ms.
  const ms = between(op.random, 0, op.random() < 0.5 ? 30 : OPERATION_MS);
  const how = pick(op.random, ['reset', 'half-close', 'destroy', 'stay'] as const);
  setTimeout(() => {
    if (how === 'reset') reset(socket);
    else if (how === 'half-close') socket.end();
    else if (how === 'destroy') socket.destroy();
  }, ms).unref();
}

const websocketUpgrade = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

/** Requests the replica refuses for their framing or host, as the connection's last answer. */
const REFUSED_HTTP1 = [
  `GET /plain HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\nTransfer-Encoding: gzip\r\n\r\n`,
  `GET /plain HTTP/1.0\r\nHost: ${CHAOS_HOST}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  `GET /plain HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\nHost: control.localhost\r\n\r\n`,
  `POST /plain HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
];

function http1Request(random: Random): string {
  const path = requestPath(random);
  const kind = pick(random, [
    'get',
    'content-length',
    'chunked',
    'expect',
    'head',
    'refused',
    'upgrade',
  ] as const);
  const host = `Host: ${CHAOS_HOST}\r\n`;
  if (kind === 'refused') return pick(random, REFUSED_HTTP1);
  if (kind === 'upgrade') return websocketUpgrade(path);
  if (kind === 'get') return `GET ${path} HTTP/1.1\r\n${host}\r\n`;
  if (kind === 'head') return `HEAD ${path} HTTP/1.1\r\n${host}\r\n`;
  const body = 'b'.repeat(between(random, 0, BODY_LIMIT * 2));
  if (kind === 'content-length')
    return `POST ${path} HTTP/1.1\r\n${host}Content-Length: ${body.length}\r\n\r\n${body}`;
  if (kind === 'expect')
    return `PUT ${path} HTTP/1.1\r\n${host}Expect: 100-continue\r\nContent-Length: ${body.length}\r\n\r\n`;
  return `POST ${path} HTTP/1.1\r\n${host}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}

/** A masked client frame (text, or whatever opcode) of `payload`. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((byte, i) => byte ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked]);
}

/** An HTTP/2 session to the gateway, over TLS or cleartext at random, owned by the operation. */
function openHttp2Session(op: Operation): { session: http2.ClientHttp2Session; secure: boolean } {
  const secure = op.random() < 0.5;
  const session = op.own(
    http2.connect(secure ? `https://127.0.0.1:${tlsPort}` : gateway.url, {
      rejectUnauthorized: false,
      servername: CHAOS_HOST,
    }),
  );
  session.on('error', () => {});
  return { session, secure };
}

const CLIENT_BEHAVIOURS: Record<string, (op: Operation) => Promise<void> | void> = {
  'http1 request': (op) => {
    const socket = rawConnection(op, op.random() < 0.4);
    socket.write(http1Request(op.random));
    leaveLater(op, socket);
  },
  'http1 pipelined': (op) => {
    const socket = rawConnection(op, op.random() < 0.4);
    socket.write(Array.from({ length: between(op.random, 2, 5) }, () => http1Request(op.random)).join(''));
    leaveLater(op, socket);
  },
  // Many connections at once, each with pipelined requests, all reset together (many an answer, a
  // refusal or an upgrade's, is then written after its connection's reset).
  'http1 burst reset at once': async (op) => {
    const secure = op.random() < 0.3;
    const sockets = Array.from({ length: between(op.random, 20, 80) }, () => rawConnection(op, secure));
    await Promise.all(
      sockets.map(
        (socket) =>
          new Promise<void>((resolve) => {
            const requests = Array.from({ length: between(op.random, 1, 3) }, () => http1Request(op.random));
            socket.write(requests.join(''), () => resolve());
            socket.once('close', () => resolve());
          }),
      ),
    );
    await sleep(between(op.random, 0, 20));
    for (const socket of sockets) reset(socket);
  },
  'http1 slow chunked body': async (op) => {
    const socket = rawConnection(op, op.random() < 0.4);
    const route = pick(op.random, ['/limited', '/retried', '/plain', '/split'] as const);
    socket.write(
      `POST ${route}${origins(op.random)} HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    leaveLater(op, socket);
    for (let i = between(op.random, 1, 6); i > 0 && !socket.destroyed; i--) {
      await sleep(between(op.random, 10, 200));
      const size = between(op.random, 1, BODY_LIMIT);
      socket.write(`${size.toString(16)}\r\n${'c'.repeat(size)}\r\n`);
    }
    if (op.random() < 0.5 && !socket.destroyed) socket.write('0\r\n\r\n');
  },
  'http1 body shorter than announced': (op) => {
    const socket = rawConnection(op, op.random() < 0.4);
    socket.write(
      `PUT ${requestPath(op.random)} HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\nContent-Length: 1000\r\n\r\nshort`,
    );
    leaveLater(op, socket);
  },
  'http1 upgrade': async (op) => {
    const socket = rawConnection(op, op.random() < 0.5);
    const prefix = pick(op.random, ['/plain', '/split', '/cached', '/retried'] as const);
    const behaviour = op.random() < 0.6 ? 'ok' : pick(op.random, ORIGIN_BEHAVIOURS);
    const before = op.random() < 0.2 ? http1Request(op.random) : '';
    socket.write(
      `${before}${websocketUpgrade(`${prefix}/b/${behaviour}/${between(op.random, 0, 1_000_000)}`)}`,
    );
    leaveLater(op, socket);
    await sleep(between(op.random, 0, 300));
    if (socket.destroyed) return;
    const what = pick(op.random, ['frame', 'garbage', 'close-frame', 'nothing'] as const);
    if (what === 'frame') socket.write(clientFrame(1, Buffer.from('hi there')));
    if (what === 'close-frame') socket.write(clientFrame(8, Buffer.from([0x03, 0xe8])));
    if (what === 'garbage') socket.write(randomBytes(op.random, between(op.random, 1, 100)));
  },
  // More requests held by a silent origin than a target's pool has connections (128): the next ones
  // (other operations' bodies among them) wait for a connection.
  'http1 crowd held by the origin': (op) => {
    const route = pick(op.random, ['/limited', '/plain', '/retried'] as const);
    for (let i = 0; i < 140; i++) {
      const socket = rawConnection(op, false);
      socket.write(`GET ${route}/b/never/${i} HTTP/1.1\r\nHost: ${CHAOS_HOST}\r\n\r\n`);
    }
  },
  'garbage bytes': (op) => {
    const socket = rawConnection(op, op.random() < 0.3);
    socket.write(randomBytes(op.random, between(op.random, 1, 400)));
    leaveLater(op, socket);
  },
  'half-closed request': (op) => {
    const socket = rawConnection(op, op.random() < 0.4);
    socket.end(http1Request(op.random));
  },
  'tls alert mid-handshake': (op) => {
    const socket = op.own(tcpConnect(tlsPort, '127.0.0.1'));
    socket.on('error', () => {});
    socket.on('data', () => {});
    const cut = between(op.random, 0, clientHello.length);
    const alert = Buffer.from([
      0x15,
      0x03,
      0x03,
      0x00,
      0x02,
      0x02,
      pick(op.random, [0x28, 0x2a, 0x30, 0x50, 0x00]),
    ]);
    socket.write(
      Buffer.concat([clientHello.subarray(0, cut), op.random() < 0.5 ? alert : randomBytes(op.random, 20)]),
    );
    leaveLater(op, socket);
  },
  'tls client refusing the certificate': (op) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: tlsPort,
      servername: CHAOS_HOST,
      ALPNProtocols: [pick(op.random, ['h2', 'http/1.1'])],
    });
    socket.on('error', () => {});
    op.own(socket);
  },
  'http2 request': async (op) => {
    const { session, secure } = openHttp2Session(op);
    const streams = between(op.random, 1, 4);
    for (let i = 0; i < streams; i++) {
      const hasBody = op.random() < 0.5;
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(
          {
            ':method': hasBody ? 'POST' : 'GET',
            ':path': requestPath(op.random),
            ':authority': CHAOS_HOST,
            ':scheme': secure ? 'https' : 'http',
          },
          { endStream: !hasBody },
        );
      } catch {
        return;
      }
      stream.on('error', () => {});
      stream.on('data', () => {});
      if (hasBody) {
        const chunks = between(op.random, 1, 4);
        void (async () => {
          for (let c = 0; c < chunks && !stream.destroyed; c++) {
            stream.write('d'.repeat(between(op.random, 1, BODY_LIMIT)));
            await sleep(between(op.random, 0, 150));
          }
          if (op.random() < 0.6 && !stream.destroyed) stream.end();
        })();
      }
      const ms = between(op.random, 0, OPERATION_MS);
      const how = pick(op.random, ['rst-stream', 'session-destroy', 'goaway', 'stay'] as const);
      setTimeout(() => {
        if (session.destroyed) return;
        if (how === 'rst-stream') stream.close(pick(op.random, [http2.constants.NGHTTP2_CANCEL, 2, 7]));
        else if (how === 'session-destroy') session.destroy();
        else if (how === 'goaway') session.goaway(2);
      }, ms).unref();
    }
  },
  'http2 websocket': async (op) => {
    const { session, secure } = openHttp2Session(op);
    await new Promise<void>((resolve) => {
      session.once('remoteSettings', () => resolve());
      session.once('close', () => resolve());
    });
    if (session.destroyed) return;
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(
        {
          ':method': 'CONNECT',
          ':protocol': 'websocket',
          ':path': `/plain/b/${op.random() < 0.6 ? 'ok' : pick(op.random, ORIGIN_BEHAVIOURS)}/${between(op.random, 0, 1e6)}`,
          ':authority': CHAOS_HOST,
          ':scheme': secure ? 'https' : 'http',
          'sec-websocket-version': '13',
        },
        { endStream: false },
      );
    } catch {
      return;
    }
    stream.on('error', () => {});
    stream.on('data', () => {});
    await sleep(between(op.random, 0, 300));
    if (stream.destroyed) return;
    if (op.random() < 0.5) stream.write(clientFrame(1, Buffer.from('frame')));
    else stream.write(randomBytes(op.random, between(op.random, 1, 50)));
    const how = pick(op.random, ['rst-stream', 'end', 'session-destroy'] as const);
    await sleep(between(op.random, 0, 300));
    if (session.destroyed) return;
    if (how === 'rst-stream') stream.close(http2.constants.NGHTTP2_CANCEL);
    else if (how === 'end') stream.end();
    else session.destroy();
  },
};

async function runOperation(seed: number): Promise<void> {
  const random = seededRandom(seed);
  const owned: OwnedResource[] = [];
  const open = new Set<OwnedResource>();
  let everyOneClosed = () => {};
  const op: Operation = {
    random,
    own: (resource) => {
      owned.push(resource);
      open.add(resource);
      resource.once('close', () => {
        open.delete(resource);
        if (open.size === 0) everyOneClosed();
      });
      return resource;
    },
  };
  const behaviour = pick(random, Object.keys(CLIENT_BEHAVIOURS));
  try {
    await CLIENT_BEHAVIOURS[behaviour]?.(op);
    // Its connections as long as its client keeps them, OPERATION_MS at most: once the client has left
    // every one (reset, closed, or closed by the replica), the lane's next operation starts.
    if (open.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        everyOneClosed = resolve;
        timer = setTimeout(resolve, OPERATION_MS);
      });
      clearTimeout(timer);
    }
  } finally {
    for (const resource of owned) resource.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------

/** What the replica logged that nobody handled (the process policy's lines). */
/** What the replica logged as escaped since its output was `from` characters long. */
const escapedErrors = (from: number): string[] =>
  gateway.service
    .output()
    .slice(from)
    .split('\n')
    .filter((line) => line.includes('uncaught exception') || line.includes('unhandled promise rejection'));

async function controlServed(): Promise<string> {
  const overHttp1 = await gateway
    .request('control', '/after-chaos', { timeoutMs: 10_000 })
    .catch((error: unknown) => ({ status: 0, body: String(error) }));
  if (overHttp1.status !== 200) return `HTTP/1.1: ${overHttp1.status} ${overHttp1.body}`;
  const session = http2Connect(`https://127.0.0.1:${tlsPort}`);
  try {
    const overHttp2 = await http2Request(session, {
      path: '/after-chaos',
      authority: 'control.localhost',
      timeoutMs: 10_000,
    }).catch((error: unknown) => ({ status: 0, body: String(error) }));
    if (overHttp2.status !== 200) return `HTTP/2 over TLS: ${overHttp2.status} ${overHttp2.body}`;
  } finally {
    session.destroy();
  }
  return 'served';
}

describe('a replica under chaos clients, a chaos origin and config changes', () => {
  it.each(SEEDS)(
    'seed %i: nothing escapes, the replica stays up and serves another tenant',
    async (seed) => {
      const loggedBefore = gateway.service.output().length;
      const random = seededRandom(seed);
      const plans = Array.from({ length: OPERATIONS }, () => Math.floor(random() * 2 ** 32));
      let done = false;
      const changes = (async () => {
        while (!done) {
          await sleep(between(random, 200, 800));
          if (done) break;
          const change: Change = chaosDeleted
            ? 'full'
            : pick(random, [
                'full',
                'origin-removed',
                'routes-edited',
                'tenant-deleted',
                'redis-stopped',
              ] as const);
          if (change !== 'redis-stopped') await changeConfig(change).catch(() => {});
          else {
            await redis.stop();
            await sleep(between(random, 200, 1_000));
            await redis.start();
          }
        }
      })();
      const lanes = Array.from({ length: LANES }, async (_, lane) => {
        for (let i = lane; i < plans.length && !gateway.service.exited(); i += LANES)
          await runOperation(plans[i] as number);
      });
      await Promise.all(lanes);
      done = true;
      await changes;
      await changeConfig('full');
      const served = await controlServed();
      const replay = `seed ${seed} (replay: CHAOS_SEEDS=${seed} CHAOS_OPERATIONS=${OPERATIONS})`;
      // The lines themselves in the diff, which ends the failure's report (a CI log may show only its end).
      expect(escapedErrors(loggedBefore), replay).toEqual([]);
      expect(gateway.service.exited(), `${replay}\n${gateway.service.tail()}`).toBe(false);
      expect(served, replay).toBe('served');
      // The chaos reached the origin (not only the replica's own refusals).
      expect(originAnswered.size, replay).toBeGreaterThan(0);
    },
    90_000,
  );
});
