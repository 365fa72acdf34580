import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { type ClientHttp2Session, connect, constants } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Rapid reset (CVE-2023-44487) against a proxied route: a client opens streams and resets each at once
 * or a few milliseconds later. The origin never answers, so only the gateway can end an exchange it
 * started; every one must end with its stream (the origin's connection closed, the tenant's upstream
 * count back to 0), and a session that keeps resetting is closed (nghttp2's reset rate limit).
 */
const HOST = 'h2reset.localhost';
const STREAMS = 96;
/** Past nghttp2's burst of 1,000 resets per session. */
const FLOOD = 5_000;

interface HangingOrigin {
  url: string;
  requests: number;
  readonly openSockets: Set<Socket>;
  close(): Promise<void>;
}

async function startHangingOrigin(): Promise<HangingOrigin> {
  const openSockets = new Set<Socket>();
  const origin = { requests: 0 } as HangingOrigin;
  const server: Server = createServer((req) => {
    origin.requests++; // never answers
    const socket = req.socket;
    openSockets.add(socket);
    socket.once('close', () => openSockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(origin, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    openSockets,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}

let origin: HangingOrigin;
let gateway: TestGateway;
const tenantId = randomUUID();
const sessions: ClientHttp2Session[] = [];

function tenantInFlight(): number {
  return gateway.store.get(tenantId)?.upstreamRequests?.inFlight ?? -1;
}

beforeAll(async () => {
  origin = await startHangingOrigin();
  gateway = await startTestGateway({ GATEWAY_H2C: 'true', GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: '1000' });
  const originId = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'h2reset',
      origins: [{ id: originId, targets: [origin.url], timeout_seconds: 60 }],
      routes: [{ origin_id: originId, path_pattern: '/*' }],
    }),
  );
});

afterAll(async () => {
  for (const session of sessions) session.destroy();
  await gateway?.close();
  await origin?.close();
});

describe('HTTP/2 rapid reset', () => {
  it('a stream reset as soon as it is opened leaves no origin request or tenant upstream slot behind', async () => {
    const session = connect(gateway.url);
    session.on('error', () => {});
    sessions.push(session);
    await new Promise<void>((resolve) => session.once('connect', () => resolve()));
    const closed: Promise<void>[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const stream = session.request({ ':method': 'GET', ':path': `/reset/${i}`, ':authority': HOST });
      stream.on('error', () => {});
      closed.push(new Promise<void>((resolve) => stream.once('close', () => resolve())));
      const delay = [0, 1, 5, 30][i % 4]!;
      if (delay === 0) stream.close(constants.NGHTTP2_CANCEL);
      else setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), delay);
    }
    await Promise.all(closed);
    await eventually(
      'no upstream request in flight',
      () => tenantInFlight() === 0 && origin.openSockets.size === 0,
      5_000,
    ).catch(() => undefined);
    expect({ inFlight: tenantInFlight(), originSockets: origin.openSockets.size }).toEqual({
      inFlight: 0,
      originSockets: 0,
    });
  });

  it('a session that keeps resetting streams is closed', async () => {
    const session = connect(gateway.url);
    session.on('error', () => {});
    sessions.push(session);
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    await new Promise<void>((resolve) => session.once('connect', () => resolve()));
    let opened = 0;
    while (opened < FLOOD && !session.closed && !session.destroyed) {
      const stream = session.request({ ':method': 'GET', ':path': `/flood/${opened}`, ':authority': HOST });
      stream.on('error', () => {});
      stream.close(constants.NGHTTP2_CANCEL);
      if (++opened % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    await closed;
    expect(opened).toBeLessThan(FLOOD);
  });
});
