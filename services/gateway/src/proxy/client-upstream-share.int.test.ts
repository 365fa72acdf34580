import { randomUUID } from 'node:crypto';
import { type ClientHttp2Session, connect } from 'node:http2';
import net from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type GatewayResponse,
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

/**
 * GATEWAY_UPSTREAM_CLIENT_SHARE. Regression test: one client address could hold as many requests at a
 * target as GATEWAY_MAX_CONNECTIONS_PER_CLIENT allows (1,000), more than the target's pooled connections
 * (128): downloads it never reads kept every connection busy until the body timeout, and the tenant's
 * other clients waited in the pool's queue and got 504. Here the pool has 8 connections and the share is
 * a quarter, so one client address may hold 2 requests at the target.
 */
const HOST = 'clientshare.localhost';
const POOL = 8;
const SHARE = POOL / 4;
/** Loopback addresses of their own, so the gateway sees two clients. */
const STALLING_CLIENT = '127.0.0.2';
const OTHER_CLIENT = '127.0.0.3';
const LOAD_BALANCER = '127.0.0.4';
const LARGE_DOWNLOAD = `/download?bytes=${64 * 1024 * 1024}`;

let gateway: TestGateway;
let origin: TestOrigin;
const tenantId = randomUUID();
const originId = randomUUID();
const stalled: Array<net.Socket | ClientHttp2Session> = [];

beforeAll(async () => {
  origin = await startTestOrigin('clientshare');
  gateway = await startTestGateway(
    {
      GATEWAY_H2C: 'true',
      GATEWAY_TRUSTED_PROXIES: `${LOAD_BALANCER}/32`,
      GATEWAY_UPSTREAM_CLIENT_SHARE: '0.25',
    },
    { upstreams: { connectionsPerTarget: POOL } },
  );
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'clientshare',
      // The origin's 30 s: a stalled download keeps its connection for the whole test.
      origins: [{ id: originId, targets: [origin.url], timeout_seconds: 30 }],
      routes: [
        { origin_id: originId, path_pattern: '/download' },
        { origin_id: originId, path_pattern: '/quick/*', timeouts: { response_headers_ms: 1_000 } },
      ],
    }),
  );
});

afterEach(async () => {
  for (const client of stalled.splice(0)) client.destroy();
  await eventually('every lease is released', () => upstreams().status()[0]?.in_flight === 0, 10_000);
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const upstreams = () =>
  gateway.store.get(tenantId)?.origins.get(originId)?.upstreams as InspectableUpstreamSet;

/** A connection from `localAddress` that asks for `path` and reads nothing of the answer. */
function openStalledDownload(localAddress: string, path: string, forwardedFor?: string): net.Socket {
  const socket = net.connect({ port: gateway.gateway.trafficPort, host: '127.0.0.1', localAddress });
  socket.on('error', () => {});
  const forwarded = forwardedFor === undefined ? '' : `X-Forwarded-For: ${forwardedFor}\r\n`;
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n${forwarded}\r\n`);
  socket.pause();
  stalled.push(socket);
  return socket;
}

/** An h2c session from `localAddress` whose streams accept no response body (a zero receive window). */
function openZeroWindowSession(localAddress: string): Promise<ClientHttp2Session> {
  const session = connect(gateway.url, {
    settings: { initialWindowSize: 0 },
    createConnection: () =>
      net.connect({ port: gateway.gateway.trafficPort, host: '127.0.0.1', localAddress }),
  });
  session.on('error', () => {});
  stalled.push(session);
  return new Promise((resolve, reject) => {
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

/** The status the gateway answers a stream with (its head needs no window). */
function streamStatus(session: ClientHttp2Session, path: string): Promise<number> {
  return new Promise((resolve) => {
    const stream = session.request({ ':path': path, ':authority': HOST });
    stream.on('error', () => {});
    stream.on('response', (headers) => resolve(Number(headers[':status'])));
  });
}

/** The status line of what a stalled connection was sent, once it reads. */
function statusLineOf(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk.toString('latin1').split('\r\n')[0] ?? ''));
    socket.resume();
  });
}

function sendFrom(localAddress: string, path: string, forwardedFor?: string): Promise<GatewayResponse> {
  return send(gateway, HOST, path, {
    localAddress,
    ...(forwardedFor === undefined ? {} : { headers: { 'x-forwarded-for': forwardedFor } }),
  });
}

/** vantageedge_gateway_client_upstream_limit_refusals_total of the tenant. */
async function refusalsCounted(): Promise<number> {
  const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
  const series = `vantageedge_gateway_client_upstream_limit_refusals_total{tenant="${tenantId}"} `;
  const line = metrics.split('\n').find((text) => text.startsWith(series));
  return line === undefined ? 0 : Number(line.slice(series.length));
}

const downloadsSeen = () => origin.seen.filter((request) => request.url.startsWith('/download')).length;

describe('one client stalling downloads from a target', () => {
  it("leaves the target's other connections to the tenant's other clients", async () => {
    const before = downloadsSeen();
    for (let i = 0; i < POOL; i++) openStalledDownload(STALLING_CLIENT, LARGE_DOWNLOAD);
    await eventually(
      'the stalling client holds its downloads',
      () => downloadsSeen() >= before + SHARE,
      5_000,
    );

    const answer = await sendFrom(OTHER_CLIENT, '/quick/hello');

    expect(answer.status).toBe(200);
    // A client not reading says nothing about the origin.
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
  });

  it('answers its requests past its share of the pool 429 client_upstream_limit at once', async () => {
    const before = downloadsSeen();
    const refusalsBefore = await refusalsCounted();
    const downloads = Array.from({ length: SHARE }, () =>
      openStalledDownload(STALLING_CLIENT, LARGE_DOWNLOAD),
    );
    await eventually('the stalling client holds its share', () => downloadsSeen() >= before + SHARE, 5_000);
    const excess = openStalledDownload(STALLING_CLIENT, LARGE_DOWNLOAD);

    const refused = await sendFrom(STALLING_CLIENT, '/quick/hello');

    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()['error']).toMatchObject({ code: 'client_upstream_limit' });
    expect(await statusLineOf(excess)).toBe('HTTP/1.1 429 Too Many Requests');
    expect(downloadsSeen()).toBe(before + SHARE);
    for (const download of downloads) expect(await statusLineOf(download)).toBe('HTTP/1.1 200 OK');
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
    expect(await refusalsCounted()).toBe(refusalsBefore + 2);
  });

  it('holds an HTTP/2 client whose streams have a zero window to the same share', async () => {
    const session = await openZeroWindowSession(STALLING_CLIENT);

    const statuses = await Promise.all(
      Array.from({ length: POOL }, () => streamStatus(session, LARGE_DOWNLOAD)),
    );

    expect(statuses.filter((status) => status === 200)).toHaveLength(SHARE);
    expect(statuses.filter((status) => status === 429)).toHaveLength(POOL - SHARE);
    expect((await sendFrom(OTHER_CLIENT, '/quick/hello')).status).toBe(200);
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
  });

  it("counts a trusted proxy's requests by the client it forwards for, and its own not at all", async () => {
    const before = downloadsSeen();
    for (let i = 0; i <= SHARE; i++) openStalledDownload(LOAD_BALANCER, LARGE_DOWNLOAD);
    for (let i = 0; i < SHARE; i++) openStalledDownload(LOAD_BALANCER, LARGE_DOWNLOAD, '203.0.113.7');
    await eventually(
      'every download reached the origin',
      () => downloadsSeen() === before + 2 * SHARE + 1,
      5_000,
    );

    const refused = await sendFrom(LOAD_BALANCER, '/quick/hello', '203.0.113.7');
    const served = await sendFrom(LOAD_BALANCER, '/quick/hello', '203.0.113.8');

    expect(refused.status).toBe(429);
    expect(served.status).toBe(200);
  });
});
