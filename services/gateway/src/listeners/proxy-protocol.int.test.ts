import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
import { inet4Block, v2Header } from '../testing/proxy-protocol-headers.js';
import { catchAllTenant, pause, within } from '../testing/raw-connections.js';
import { rawExchange } from '../testing/raw-exchange.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * GATEWAY_PROXY_PROTOCOL=on behind a layer-4 balancer (HAProxy in TCP mode, AWS NLB): the client address
 * is the one the PROXY header names, on the plain port (HTTP/1.1, h2c) and the TLS port (HTTPS/1.1,
 * HTTP/2; the header before the ClientHello), for X-Real-IP, X-Forwarded-For, IP rules and the access
 * log. Only a trusted peer's header is believed; a connection without a valid one is closed.
 */
const HOST = 'pp.localhost';

let gateway: TestGateway;
let origin: TestOrigin;
let certificateFiles: DefaultCertificateFiles;

beforeAll(async () => {
  certificateFiles = await writeDefaultCertificateFiles('proxy-protocol');
  origin = await startTestOrigin('proxy-protocol');
  gateway = await startTestGateway({
    GATEWAY_PROXY_PROTOCOL: 'on',
    // The balancer is 127.0.0.1; 10.200.0.0/16 stands for an L7 proxy behind it that writes X-Forwarded-For.
    GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32,10.200.0.0/16',
    GATEWAY_H2C: 'true',
    GATEWAY_HEADERS_TIMEOUT_MS: '500',
    GATEWAY_REQUEST_TIMEOUT_MS: '5000',
    GATEWAY_ACCESS_LOG_SAMPLE_RATE: '1',
    ...certificateFiles.tlsListenerEnv,
  });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'pp',
      origins: [{ id: originId, targets: [origin.url] }],
      routes: [
        { origin_id: originId, path_pattern: '/denied/*', ip_rules: { allow: [], deny: ['203.0.113.0/24'] } },
        { origin_id: originId, path_pattern: '/*' },
      ],
    }),
  );
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
  await certificateFiles?.remove();
});

const v1 = (client: string, port = 4711) =>
  Buffer.from(
    client.includes(':')
      ? `PROXY TCP6 ${client} ::1 ${port} 443\r\n`
      : `PROXY TCP4 ${client} 127.0.0.1 ${port} 443\r\n`,
    'latin1',
  );

/** A v2 PROXY (or LOCAL) header for an IPv4 client, with a TLV (AWS's VPC endpoint id) after the addresses. */
function v2(client: string, command: 'PROXY' | 'LOCAL' = 'PROXY'): Buffer {
  const tlv = Buffer.concat([Buffer.from([0xea, 0x00, 0x0d, 0x01]), Buffer.from('vpce-0123456', 'latin1')]);
  const body = Buffer.concat([inet4Block(client, '127.0.0.1', 4711, 443), tlv]);
  return v2Header(command === 'PROXY' ? 1 : 0, 0x11, body);
}

/**
 * A connection to `port` on which a balancer wrote `parts` (each its own write, a pause between them);
 * resolves once they are written.
 */
async function balancerConnection(
  port: number,
  parts: readonly Buffer[],
  options: { localAddress?: string; watch?: (socket: net.Socket) => void } = {},
): Promise<net.Socket> {
  const { localAddress } = options;
  const socket = net.connect({ port, host: '127.0.0.1', ...(localAddress ? { localAddress } : {}) });
  socket.setNoDelay(true);
  socket.on('error', () => {});
  options.watch?.(socket);
  for (const [index, part] of parts.entries()) {
    if (index > 0) await pause(30);
    socket.write(part);
  }
  return socket;
}

interface EchoedRequest {
  status: number;
  headers: Record<string, string | string[] | undefined>;
}

/** One HTTP/1.1 request over `connection` (plain or TLS); resolves with the status and the origin's view. */
function http1Over(connection: Duplex, requestPath = '/echo', headers: Record<string, string> = {}) {
  return new Promise<EchoedRequest>((resolve, reject) => {
    const req = request(
      {
        createConnection: () => connection as net.Socket,
        path: requestPath,
        headers: { host: HOST, ...headers },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => {
          const seen =
            res.statusCode === 200 ? (JSON.parse(text) as { headers: EchoedRequest['headers'] }) : undefined;
          resolve({ status: res.statusCode ?? 0, headers: seen?.headers ?? {} });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request over `connection` (TLS with ALPN h2, or cleartext with prior knowledge). */
function http2Over(connection: Duplex, scheme: 'https' | 'http') {
  return new Promise<EchoedRequest>((resolve, reject) => {
    const session = http2.connect(`${scheme}://${HOST}`, { createConnection: () => connection });
    session.on('error', reject);
    const stream = session.request({ ':path': '/echo', ':authority': HOST });
    let text = '';
    let status = 0;
    stream.setEncoding('utf8');
    stream.on('response', (headers) => {
      status = Number(headers[':status']);
    });
    stream.on('data', (chunk: string) => {
      text += chunk;
    });
    stream.on('end', () => {
      session.close();
      resolve({ status, headers: (JSON.parse(text) as { headers: EchoedRequest['headers'] }).headers });
    });
    stream.on('error', reject);
  });
}

const overTls = (socket: net.Socket, alpn: string) =>
  tls.connect({ socket, servername: HOST, rejectUnauthorized: false, ALPNProtocols: [alpn] });

const accessLinesOf = (clientIp: string) =>
  gateway.logLines.filter((line) => line['kind'] === 'access' && line['client_ip'] === clientIp);

/** vantageedge_gateway_error_responses_total{tenant="unknown"} for `code`. */
async function refusals(code: string): Promise<number> {
  const text = await gateway.registry.metrics();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('vantageedge_gateway_error_responses_total{') && l.includes(`code="${code}"`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the client a trusted balancer names in its PROXY header', () => {
  it('is the client of a plain HTTP/1.1 request (v1): X-Real-IP, X-Forwarded-For and the access log', async () => {
    const answer = await http1Over(
      await balancerConnection(gateway.gateway.trafficPort, [v1('198.51.100.21')]),
    );
    expect(answer.status).toBe(200);
    expect(answer.headers['x-real-ip']).toBe('198.51.100.21');
    expect(answer.headers['x-forwarded-for']).toBe('198.51.100.21');
    await vi.waitFor(() => expect(accessLinesOf('198.51.100.21')).toHaveLength(1), { timeout: 5_000 });
  });

  it('is the client of a v2 header with TLVs, whole or split across packets, the request in the same packet', async () => {
    const header = v2('198.51.100.22');
    const request = Buffer.from(`GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`, 'latin1');
    const whole = await rawExchange(
      gateway.gateway.trafficPort,
      Buffer.concat([header, request]),
      ['GET'],
      5_000,
    );
    expect(whole.responses[0]?.status).toBe(200);
    expect(JSON.parse(whole.responses[0]!.body).headers['x-real-ip']).toBe('198.51.100.22');

    const parts = [
      header.subarray(0, 5),
      header.subarray(5, 15),
      header.subarray(15, 30),
      header.subarray(30),
    ];
    const split = await http1Over(await balancerConnection(gateway.gateway.trafficPort, parts));
    expect(split.headers['x-real-ip']).toBe('198.51.100.22');
  });

  it("is the balancer's header alone: a second one, the client's own, is a malformed request", async () => {
    const forged = Buffer.from(`GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`, 'latin1');
    const bytes = Buffer.concat([v2('198.51.100.35'), v1('192.0.2.66'), forged]);
    const exchange = await rawExchange(gateway.gateway.trafficPort, bytes, ['GET'], 5_000);
    expect(exchange.responses[0]?.status).toBe(400);
    expect(origin.seen.some((seen) => seen.headers['x-real-ip'] === '192.0.2.66')).toBe(false);
    await vi.waitFor(() => expect(accessLinesOf('198.51.100.35')).toHaveLength(1), { timeout: 5_000 });
  });

  it('is the client of an IPv6 v1 header', async () => {
    const answer = await http1Over(
      await balancerConnection(gateway.gateway.trafficPort, [v1('2001:db8::7')]),
    );
    expect(answer.headers['x-real-ip']).toBe('2001:db8::7');
  });

  it('is what IP rules match', async () => {
    const port = gateway.gateway.trafficPort;
    expect((await http1Over(await balancerConnection(port, [v1('203.0.113.9')]), '/denied/x')).status).toBe(
      403,
    );
    expect((await http1Over(await balancerConnection(port, [v1('198.51.100.9')]), '/denied/x')).status).toBe(
      200,
    );
  });

  it('starts the X-Forwarded-For walk: a client forges nothing, a trusted proxy it names is walked past', async () => {
    const port = gateway.gateway.trafficPort;
    const forged = await http1Over(await balancerConnection(port, [v1('198.51.100.23')]), '/echo', {
      'x-forwarded-for': '192.0.2.1',
    });
    expect(forged.headers['x-real-ip']).toBe('198.51.100.23');
    expect(forged.headers['x-forwarded-for']).toBe('198.51.100.23');
    const behindProxy = await http1Over(await balancerConnection(port, [v1('10.200.0.5')]), '/echo', {
      'x-forwarded-for': '198.51.100.24',
    });
    expect(behindProxy.headers['x-real-ip']).toBe('198.51.100.24');
  });

  it('is the client of h2c, HTTPS/1.1 and HTTP/2 over TLS (the header before the ClientHello)', async () => {
    const h2c = await http2Over(
      await balancerConnection(gateway.gateway.trafficPort, [v2('198.51.100.25')]),
      'http',
    );
    expect(h2c.headers['x-real-ip']).toBe('198.51.100.25');
    const tlsPort = gateway.gateway.tlsPort!;
    const https1 = await http1Over(
      overTls(await balancerConnection(tlsPort, [v1('198.51.100.26')]), 'http/1.1'),
    );
    expect(https1.status).toBe(200);
    expect(https1.headers['x-real-ip']).toBe('198.51.100.26');
    const h2 = await http2Over(
      overTls(await balancerConnection(tlsPort, [v2('198.51.100.27')]), 'h2'),
      'https',
    );
    expect(h2.headers['x-real-ip']).toBe('198.51.100.27');
    await vi.waitFor(() => expect(accessLinesOf('198.51.100.27')).toHaveLength(1), { timeout: 5_000 });
  });

  it("is the client of a TLS connection whose ClientHello came in the header's packet", async () => {
    const socket = net.connect({ port: gateway.gateway.tlsPort!, host: '127.0.0.1' });
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    // Held back until the ClientHello is queued behind the header: one write of both.
    socket.cork();
    socket.write(v1('198.51.100.29'));
    const secure = overTls(socket, 'http/1.1');
    setTimeout(() => socket.uncork(), 50);
    const answer = await http1Over(secure);
    expect(answer.headers['x-real-ip']).toBe('198.51.100.29');
  });

  it('leaves the balancer as the client for a v2 LOCAL header (its health check) and PROXY UNKNOWN', async () => {
    const port = gateway.gateway.trafficPort;
    const local = await http1Over(await balancerConnection(port, [v2('198.51.100.28', 'LOCAL')]));
    expect(local.headers['x-real-ip']).toBe('127.0.0.1');
    const unknown = await http1Over(
      await balancerConnection(port, [Buffer.from('PROXY UNKNOWN\r\n', 'latin1')]),
    );
    expect(unknown.headers['x-real-ip']).toBe('127.0.0.1');
  });
});

describe('a connection without a trusted, well-formed PROXY header', () => {
  /** Writes `parts` and resolves with what came back once the gateway closed the connection. */
  async function closedAnswer(
    port: number,
    parts: readonly Buffer[],
    localAddress?: string,
  ): Promise<string> {
    let received = '';
    let closed: Promise<unknown> = Promise.resolve();
    await balancerConnection(port, parts, {
      ...(localAddress ? { localAddress } : {}),
      watch: (socket) => {
        closed = new Promise((resolve) => socket.once('close', resolve));
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
        });
      },
    });
    await within(closed, 10_000, 'the gateway closes the connection');
    return received;
  }

  it('is closed unanswered when an untrusted peer sends one, and recorded', async () => {
    const before = await refusals('proxy_protocol_untrusted');
    const request = Buffer.from(`GET /echo HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 'latin1');
    for (const port of [gateway.gateway.trafficPort, gateway.gateway.tlsPort!]) {
      expect(await closedAnswer(port, [v1('198.51.100.30'), request], '127.0.0.2')).toBe('');
    }
    expect(await refusals('proxy_protocol_untrusted')).toBe(before + 2);
    await vi.waitFor(
      () =>
        expect(
          accessLinesOf('127.0.0.2').filter((l) => l['error_code'] === 'proxy_protocol_untrusted'),
        ).toHaveLength(2),
      { timeout: 5_000 },
    );
    expect(origin.seen.some((seen) => seen.headers['x-real-ip'] === '198.51.100.30')).toBe(false);
  });

  it.each([
    ['a request without a header', 'GET /echo HTTP/1.1\r\nHost: pp.localhost\r\n\r\n'],
    ['a v1 line without CRLF', `PROXY TCP4 198.51.100.31 127.0.0.1 1 2\nGET / HTTP/1.1\r\n\r\n`],
    ['a v1 line past 107 bytes', `PROXY TCP4 198.51.100.31 ${'1'.repeat(120)}`],
    ['garbage', '\u0000\u00ff\u0013garbage\r\n\r\n'],
  ])('is closed unanswered on %s', async (_, text) => {
    const before = await refusals('proxy_protocol_malformed');
    expect(await closedAnswer(gateway.gateway.trafficPort, [Buffer.from(text, 'latin1')])).toBe('');
    expect(await refusals('proxy_protocol_malformed')).toBe(before + 1);
  });

  it('is closed on a v2 length far past what a balancer sends, before it is read', async () => {
    const before = await refusals('proxy_protocol_malformed');
    const header = v2('198.51.100.32');
    header.writeUInt16BE(60_000, 14);
    expect(await closedAnswer(gateway.gateway.trafficPort, [header.subarray(0, 16)])).toBe('');
    expect(await refusals('proxy_protocol_malformed')).toBe(before + 1);
  });

  it('is closed when the header does not arrive within the headers timeout', async () => {
    const before = await refusals('proxy_protocol_timeout');
    expect(await closedAnswer(gateway.gateway.trafficPort, [Buffer.from('PROXY TCP4 198.5', 'latin1')])).toBe(
      '',
    );
    expect(await refusals('proxy_protocol_timeout')).toBe(before + 1);
  });

  it('leaves the replica serving', async () => {
    const answer = await http1Over(
      await balancerConnection(gateway.gateway.trafficPort, [v1('198.51.100.33')]),
    );
    expect(answer.headers['x-real-ip']).toBe('198.51.100.33');
  });
});

/** The status line of one kept-alive request written on `socket` (HEAD: its answer is one head). */
function servedOn(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1').split('\r\n')[0]!));
    socket.write('HEAD /echo HTTP/1.1\r\nHost: pp.localhost\r\n\r\n');
  });
}

/**
 * The per-client connection limit behind a PROXY protocol balancer counts the clients the headers name,
 * not the balancer that carries them all. A client handed a /48 has 65,536 /64s: counted by its /64, each
 * was a client with a connection allowance of its own; GATEWAY_CLIENT_IPV6_PREFIX=48 counts it as one.
 */
describe.each([
  {
    title: 'the clients the headers name, not the balancer that carries them all',
    settings: {},
    client: '198.51.100.40',
    otherClient: '198.51.100.41',
    sameClient: '198.51.100.40',
  },
  {
    title: 'with GATEWAY_CLIENT_IPV6_PREFIX=48, the /64s of one /48 as one client (another /48 is another)',
    settings: { GATEWAY_CLIENT_IPV6_PREFIX: '48' },
    client: '2001:db8:5:1::1',
    otherClient: '2001:db8:6:1::1',
    sameClient: '2001:db8:5:2::1',
  },
])('the per-client connection limit behind a PROXY protocol balancer counts $title', (limit) => {
  let limited: TestGateway;

  beforeAll(async () => {
    limited = await startTestGateway({
      GATEWAY_PROXY_PROTOCOL: 'on',
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
      GATEWAY_MAX_CONNECTIONS_PER_CLIENT: '1',
      ...limit.settings,
    });
    limited.store.apply(catchAllTenant('pp', origin.url));
  });

  afterAll(async () => {
    await limited?.close();
  });

  it(`closes a second connection of ${limit.sameClient}'s client and serves the others`, async () => {
    const port = limited.gateway.trafficPort;
    const first = await balancerConnection(port, [v1(limit.client)]);
    expect(await servedOn(first)).toBe('HTTP/1.1 200 OK');
    const otherClient = await balancerConnection(port, [v1(limit.otherClient)]);
    expect(await servedOn(otherClient)).toBe('HTTP/1.1 200 OK');
    const sameClient = await balancerConnection(port, [v1(limit.sameClient)]);
    await within(
      new Promise((resolve) => sameClient.once('close', resolve)),
      10_000,
      `the connection of ${limit.sameClient}, the client of ${limit.client}, closes`,
    );
    expect(await servedOn(first)).toBe('HTTP/1.1 200 OK');
    expect(await servedOn(otherClient)).toBe('HTTP/1.1 200 OK');
    first.destroy();
    otherClient.destroy();
  });
});

/** The connections node accepted on `server`, those still waiting for their header included. */
const openConnectionsOf = (server: net.Server | undefined) =>
  new Promise<number>((resolve) => server?.getConnections((_error, count) => resolve(count)));

describe('a replica stopping behind a PROXY protocol balancer', () => {
  it('regression: closes the connections still waiting for their header on both ports, and stops without waiting for them', async () => {
    // A headers timeout far past the test's patience: only the stop itself may close these connections.
    const stopping = await startTestGateway({
      GATEWAY_PROXY_PROTOCOL: 'on',
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
      GATEWAY_HEADERS_TIMEOUT_MS: '600000',
      GATEWAY_REQUEST_TIMEOUT_MS: '600000',
      ...certificateFiles.tlsListenerEnv,
    });
    const { trafficServer, tlsServer, trafficPort, tlsPort } = stopping.gateway;
    const partialHeader = Buffer.from('PROXY TCP4 198.51.100.50', 'latin1');
    const waiting = await Promise.all(
      [trafficPort, tlsPort!].map((port) => balancerConnection(port, [partialHeader])),
    );
    const closed = waiting.map((socket) => new Promise((resolve) => socket.once('close', resolve)));
    await vi.waitFor(
      async () =>
        expect((await openConnectionsOf(trafficServer)) + (await openConnectionsOf(tlsServer))).toBe(2),
      { timeout: 5_000 },
    );

    await within(stopping.gateway.close({ timeoutMs: 0 }), 10_000, 'the replica stops');
    await within(Promise.all(closed), 10_000, 'the waiting connections are closed');
    await stopping.store.close();
  });
});

describe('GATEWAY_MAX_CONNECTIONS behind a PROXY protocol balancer', () => {
  let budgeted: TestGateway;

  beforeAll(async () => {
    budgeted = await startTestGateway({
      GATEWAY_PROXY_PROTOCOL: 'on',
      GATEWAY_TRUSTED_PROXIES: '127.0.0.1/32',
      GATEWAY_MAX_CONNECTIONS: '2',
      GATEWAY_HEADERS_TIMEOUT_MS: '30000',
      GATEWAY_REQUEST_TIMEOUT_MS: '30000',
      ...certificateFiles.tlsListenerEnv,
    });
    budgeted.store.apply(catchAllTenant('pp', origin.url));
  });

  afterAll(async () => {
    await budgeted?.close();
  });

  const request = Buffer.from(`GET /echo HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`, 'latin1');

  it('regression: counts the connections still waiting for their header, whichever port holds them', async () => {
    const { trafficPort, tlsPort, tlsServer } = budgeted.gateway;
    const waiting = await Promise.all(
      [1, 2].map(() => balancerConnection(tlsPort!, [Buffer.from('PROXY TCP4 198.51.100.5', 'latin1')])),
    );
    await vi.waitFor(async () => expect(await openConnectionsOf(tlsServer)).toBe(2), { timeout: 5_000 });
    // The replica holds two connections: a third, on the other port, is closed on arrival.
    const refused = await rawExchange(
      trafficPort,
      Buffer.concat([v1('198.51.100.51'), request]),
      ['GET'],
      5_000,
    );
    expect(refused.closed).toBe(true);
    expect(refused.responses).toHaveLength(0);

    for (const socket of waiting) socket.destroy();
    await vi.waitFor(
      async () => {
        const served = await rawExchange(
          trafficPort,
          Buffer.concat([v1('198.51.100.52'), request]),
          ['GET'],
          5_000,
        );
        expect(served.responses[0]?.status).toBe(200);
      },
      { timeout: 5_000 },
    );
  });
});
