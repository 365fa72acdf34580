import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { InspectableUpstreamSet } from '../upstream/upstream-set.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };

interface CountingOrigin {
  url: string;
  server: Server;
  connections: number;
  requests: number;
  held: ServerResponse[];
  close(): Promise<void>;
}

async function countingOrigin(
  behave: (req: IncomingMessage, res: ServerResponse, o: CountingOrigin) => void,
) {
  const o = { connections: 0, requests: 0, held: [] } as unknown as CountingOrigin;
  const server = createServer((req, res) => {
    o.requests++;
    behave(req, res, o);
  });
  server.on('connection', () => o.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  o.server = server;
  o.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  o.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return o;
}

function openClient(gateway: TestGateway, host: string, path: string): net.Socket {
  const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  return socket;
}

/**
 * Origin connections kept when the gateway drops a request or an answer. Regression tests: a short
 * 503 to be retried closed its keep-alive connection (one new connection per retry, for an origin
 * shedding load), and requests given up while they waited for a connection (their client left, their
 * wait ran out) kept their place in the pool's bounded queue (a lone request then got 503
 * upstream_queue_full) and, at their turn, each closed a connection.
 */
describe('a short answer to be retried', () => {
  let gateway: TestGateway;
  let shedding: CountingOrigin;
  let healthy: CountingOrigin;
  beforeAll(async () => {
    // A complete, tiny 503 (load shedding) — its body is fully there with the head.
    shedding = await countingOrigin((req, res) => {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '4' });
      res.end('busy');
    });
    healthy = await countingOrigin((req, res) => {
      req.resume();
      res.end('ok');
    });
    gateway = await startTestGateway();
    const originId = randomUUID();
    const plainId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId: randomUUID(),
        subdomain: 'churn',
        origins: [
          {
            id: originId,
            targets: [shedding.url, healthy.url],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          { id: plainId, targets: [shedding.url], health_check: NO_HEALTH_CHECKS },
        ],
        routes: [
          {
            origin_id: originId,
            path_pattern: '/retry/*',
            retries: { on: ['503'], budget: { percent: 100, min_retries: 1000 } },
          },
          { origin_id: plainId, path_pattern: '/plain/*' },
        ],
      }),
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await shedding?.close();
    await healthy?.close();
  });

  it('is read to its end and its connection reused, as a 503 passed through is', async () => {
    const plainBefore = shedding.connections;
    for (let i = 0; i < 20; i++)
      expect((await send(gateway, 'churn.localhost', `/plain/${i}`)).status).toBe(503);
    expect(shedding.connections - plainBefore).toBeLessThanOrEqual(1);
    const connBefore = shedding.connections;
    const reqBefore = shedding.requests;
    for (let i = 0; i < 40; i++)
      expect((await send(gateway, 'churn.localhost', `/retry/${i}`)).status).toBe(200);
    expect(shedding.requests - reqBefore).toBeGreaterThanOrEqual(20);
    expect(shedding.connections - connBefore).toBeLessThanOrEqual(2);
  });
});

describe('requests given up while they wait for a connection', () => {
  let gateway: TestGateway;
  let origin: CountingOrigin;
  let get: () => InspectableUpstreamSet;
  beforeAll(async () => {
    origin = await countingOrigin((req, res, o) => {
      req.resume();
      if (req.url?.startsWith('/hold')) o.held.push(res);
      else res.end('ok');
    });
    // Every client here is 127.0.0.1: its share of the pool would refuse it before the pool is full.
    gateway = await startTestGateway(
      { GATEWAY_UPSTREAM_CLIENT_SHARE: '0' },
      { upstreams: { connectionsPerTarget: 1, maxQueuedPerTarget: 4 } },
    );
    const tenantId = randomUUID();
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain: 'queue',
        origins: [{ id: originId, targets: [origin.url], timeout_seconds: 30 }],
        routes: [
          { origin_id: originId, path_pattern: '/hold/*' },
          { origin_id: originId, path_pattern: '/quick/*', timeouts: { response_headers_ms: 2000 } },
        ],
      }),
    );
    get = () => gateway.store.get(tenantId)?.origins.get(originId)?.upstreams as InspectableUpstreamSet;
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('leave the queue: a lone request after a burst of clients that left waits and is served', async () => {
    const holder = openClient(gateway, 'queue.localhost', '/hold/1');
    await eventually('the only connection is busy', () => origin.held.length === 1, 5_000);
    // Four clients queue, then leave (abandon) at once.
    const leavers = [1, 2, 3, 4].map((i) => openClient(gateway, 'queue.localhost', `/quick/leave-${i}`));
    await eventually('four wait', () => get().status()[0]?.in_flight === 5, 5_000);
    for (const s of leavers) s.destroy();
    await eventually('their leases are released', () => get().status()[0]?.in_flight === 1, 5_000);
    const lone = send(gateway, 'queue.localhost', '/quick/lone');
    // Let the holder finish after 300 ms: the lone request could have been served right then.
    await sleep(300);
    const connsBefore = origin.connections;
    origin.held.shift()!.end('done');
    const answer = await lone;
    await sleep(300);
    holder.destroy();
    expect(answer.status).toBe(200);
    // The lone request went over the connection the holder freed: none was opened for the leavers.
    expect(origin.connections - connsBefore).toBeLessThanOrEqual(1);
  });

  it('leave the queue when their wait ran out: the next request waits too (504), not refused (503)', async () => {
    const holder = openClient(gateway, 'queue.localhost', '/hold/2');
    await eventually('the only connection is busy', () => origin.held.length === 1, 5_000);
    const timedOut = await Promise.all(
      [1, 2, 3, 4].map((i) => send(gateway, 'queue.localhost', `/quick/t-${i}`)),
    );
    expect(timedOut.map((response) => response.status)).toEqual([504, 504, 504, 504]);
    await eventually('their leases are released', () => get().status()[0]?.in_flight === 1, 5_000);
    const answer = await send(gateway, 'queue.localhost', '/quick/after');
    origin.held.shift()!.end('done');
    holder.destroy();
    expect(answer.status).toBe(504);
  });
});
