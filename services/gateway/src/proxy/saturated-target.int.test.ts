import { randomUUID } from 'node:crypto';
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
 * Regression tests: a target whose pooled connections were all busy held every further request in its
 * pool's queue with no deadline and no bound (undici's response-head timer starts only once a request
 * is on a connection), and a client that did not read its response pinned a pooled connection forever
 * (undici's body timer does not run while the proxy has paused the origin for a slow client): 128
 * slow-reading clients blocked a target for everyone. Here the pools have 2 connections and queue 2.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const HOST = 'saturated.localhost';

let gateway: TestGateway;
let origin: TestOrigin;
const tenantId = randomUUID();
const originId = randomUUID();
const clients: net.Socket[] = [];

beforeAll(async () => {
  origin = await startTestOrigin('saturated');
  // Every client here is 127.0.0.1: its share of the pool would refuse it before the pool is full.
  gateway = await startTestGateway(
    { GATEWAY_UPSTREAM_CLIENT_SHARE: '0' },
    { upstreams: { connectionsPerTarget: 2, maxQueuedPerTarget: 2 } },
  );
  gateway.store.apply(
    buildSnapshot({
      tenantId,
      subdomain: 'saturated',
      origins: [{ id: originId, targets: [origin.url], timeout_seconds: 30 }],
      routes: [
        // The origin's 30 s: these hold their connection for the whole test.
        { origin_id: originId, path_pattern: '/slow/*' },
        { origin_id: originId, path_pattern: '/quick/*', timeouts: { response_headers_ms: 500 } },
        { origin_id: originId, path_pattern: '/download', timeouts: { idle_ms: 500 } },
      ],
    }),
  );
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await eventually('every lease is released', () => upstreams().status()[0]?.in_flight === 0, 10_000);
});

afterAll(async () => {
  await gateway?.close();
  await origin?.close();
});

const upstreams = () =>
  gateway.store.get(tenantId)?.origins.get(originId)?.upstreams as InspectableUpstreamSet;

/** A client that sends `path` and never reads what comes back. */
function openClient(path: string): void {
  const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
  socket.pause();
  clients.push(socket);
}

function answerWithin(path: string, ms: number): Promise<GatewayResponse | 'no answer'> {
  return Promise.race([send(gateway, HOST, path), sleep(ms).then(() => 'no answer' as const)]);
}

describe('a target whose connections are all busy', () => {
  it("answers a request still waiting for a connection 504 after the route's response_headers_ms", async () => {
    openClient('/slow/1');
    openClient('/slow/2');
    await eventually('both connections are busy', () => origin.seen.length >= 2, 5_000);
    const started = performance.now();
    const answer = await answerWithin('/quick/x', 5_000);
    expect(answer).not.toBe('no answer');
    const { status, json } = answer as GatewayResponse;
    expect(status).toBe(504);
    expect(json()['error']).toMatchObject({ code: 'upstream_timeout' });
    expect(performance.now() - started).toBeLessThan(2_000);
    // Waiting for a connection says nothing about the origin's health.
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
  });

  it('answers 503 upstream_queue_full at once past the queue bound', async () => {
    const seenBefore = origin.seen.length;
    openClient('/slow/1');
    openClient('/slow/2');
    await eventually('both connections are busy', () => origin.seen.length >= seenBefore + 2, 5_000);
    openClient('/slow/queued-1');
    openClient('/slow/queued-2');
    await eventually('two requests wait', () => upstreams().status()[0]?.in_flight === 4, 5_000);
    const started = performance.now();
    const answer = await answerWithin('/quick/x', 5_000);
    expect(answer).not.toBe('no answer');
    const { status, json } = answer as GatewayResponse;
    expect(status).toBe(503);
    expect(json()['error']).toMatchObject({ code: 'upstream_queue_full' });
    expect(performance.now() - started).toBeLessThan(400);
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
  });

  it("frees a connection whose client stopped reading after the route's idle_ms, cutting that response", async () => {
    const seenBefore = origin.seen.length;
    openClient('/download?bytes=67108864');
    openClient('/download?bytes=67108864');
    await eventually('both downloads hold a connection', () => origin.seen.length >= seenBefore + 2, 5_000);
    // Neither reader reads: each connection is freed once the origin has been paused for idle_ms.
    await eventually(
      'the stalled downloads free their connections',
      () => upstreams().status()[0]?.in_flight === 0,
      10_000,
    );
    const answer = await answerWithin('/quick/hello', 5_000);
    expect(answer).not.toBe('no answer');
    expect((answer as GatewayResponse).status).toBe(200);
    expect(upstreams().status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
    // The slow readers' responses were cut: reading now, they get what was buffered, then the close.
    const received = clients.map((client) => {
      const bytes = { count: 0, closed: false };
      client.on('data', (chunk: Buffer) => {
        bytes.count += chunk.length;
      });
      client.on('close', () => {
        bytes.closed = true;
      });
      client.resume();
      return bytes;
    });
    await eventually('the slow readers are disconnected', () => received.every((r) => r.closed), 5_000);
    for (const bytes of received) expect(bytes.count).toBeLessThan(67_108_864);
  });
});
