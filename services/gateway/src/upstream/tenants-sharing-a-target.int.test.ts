import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import type { InspectableUpstreamSet } from './upstream-set.js';

/**
 * Two tenants whose origins name the same server (one by 127.0.0.1, the other by localhost) share no
 * state at it: health, circuit and connections are each tenant's own. Tenant A's clients making the
 * server fail, and A's health-check path answering 500, eject it for A only; and no request of B goes
 * down a connection A's requests used, even one on which the server sent more than A asked for.
 */
const FRAGILE = {
  timeout_seconds: 2,
  circuit_breaker: { consecutive_failures: 1, open_seconds: 3600 },
  health_check: {
    active: { enabled: true, interval_seconds: 1, timeout_seconds: 1, unhealthy_threshold: 1 },
    passive: { enabled: true, unhealthy_threshold: 1 },
  },
};

let gateway: TestGateway;
let server: Server;
/** The client port of the gateway's connection each request came on, by the tenant's path prefix. */
const socketsOf = { a: new Set<number>(), b: new Set<number>() };
let upstreamsOf: (tenant: 'a' | 'b') => InspectableUpstreamSet;
/** Whether the server answers A's health-check path with 500 (from the second test on). */
let failingForA = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/';
    req.resume();
    if (path === '/health-a') return void res.writeHead(failingForA ? 500 : 200).end();
    if (path === '/health-b') return void res.end('up');
    const tenant = path.startsWith('/a/') ? 'a' : 'b';
    socketsOf[tenant].add(req.socket.remotePort ?? 0);
    if (path.startsWith('/a/fail')) return void res.writeHead(503).end('failing for A');
    if (path === '/a/leftover') {
      // A complete answer, then an unasked one on the same connection: bytes nobody asked for.
      res.end('for A', () => {
        setTimeout(() => {
          if (!req.socket.destroyed) {
            req.socket.write('HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nnot for you');
          }
        }, 20);
      });
      return;
    }
    res.end(`answer to ${path}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  gateway = await startTestGateway();
  const tenantA = randomUUID();
  const tenantB = randomUUID();
  const originA = randomUUID();
  const originB = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      tenantId: tenantA,
      subdomain: 'shared-target-a',
      origins: [
        { id: originA, targets: [`http://127.0.0.1:${port}`], health_check_path: '/health-a', ...FRAGILE },
      ],
      routes: [{ origin_id: originA, path_pattern: '/*' }],
    }),
  );
  gateway.store.apply(
    buildSnapshot({
      tenantId: tenantB,
      subdomain: 'shared-target-b',
      origins: [
        { id: originB, targets: [`http://localhost:${port}`], health_check_path: '/health-b', ...FRAGILE },
      ],
      routes: [{ origin_id: originB, path_pattern: '/*' }],
    }),
  );
  upstreamsOf = (tenant) => {
    const [tenantId, originId] = tenant === 'a' ? [tenantA, originA] : [tenantB, originB];
    return gateway.store.get(tenantId)?.origins.get(originId)?.upstreams as InspectableUpstreamSet;
  };
});

afterAll(async () => {
  await gateway?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => server?.close(() => resolve()));
});

describe('two tenants naming the same target', () => {
  it("never sends B's requests down a connection A's requests used, even after A's answer left bytes behind", async () => {
    const first = await send(gateway, 'shared-target-a.localhost', '/a/leftover');
    expect(first.text).toBe('for A');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const answers = [];
    for (let i = 0; i < 3; i++) {
      answers.push((await send(gateway, 'shared-target-b.localhost', `/b/${i}`)).text);
      answers.push((await send(gateway, 'shared-target-a.localhost', `/a/${i}`)).text);
    }
    expect(answers).toEqual([
      'answer to /b/0',
      'answer to /a/0',
      'answer to /b/1',
      'answer to /a/1',
      'answer to /b/2',
      'answer to /a/2',
    ]);
    expect(socketsOf.a.size).toBeGreaterThan(0);
    expect(socketsOf.b.size).toBeGreaterThan(0);
    expect([...socketsOf.b].filter((port) => socketsOf.a.has(port))).toEqual([]);
  });

  it("ejects the target and opens its circuit for A alone when A's clients and health checks fail there", async () => {
    failingForA = true;
    expect((await send(gateway, 'shared-target-a.localhost', '/a/fail')).status).toBe(503);
    await eventually("A's request is released", () => upstreamsOf('a').status()[0]?.in_flight === 0, 5_000);
    expect(upstreamsOf('a').status()[0]).toMatchObject({ healthy: false, circuit: 'open' });
    expect((await send(gateway, 'shared-target-a.localhost', '/a/after')).status).toBe(503);
    // B's own probes (of /health-b) keep coming back good: wait for one round past A's ejection.
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(upstreamsOf('b').status()[0]).toMatchObject({ healthy: true, circuit: 'closed' });
    const answer = await send(gateway, 'shared-target-b.localhost', '/b/after');
    expect({ status: answer.status, text: answer.text }).toEqual({ status: 200, text: 'answer to /b/after' });
  });
});
