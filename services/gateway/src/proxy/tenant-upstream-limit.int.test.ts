import { randomUUID } from 'node:crypto';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { eventually } from '@vantageedge/shared/snapshot-bus/testing';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  send,
  startTestGateway,
  startTestOrigin,
  type TestGateway,
  type TestOrigin,
} from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT. Regression test: nothing bounded the requests one tenant had
 * in flight to its origins on a replica (each target's pool opens up to 128 connections, a tenant may
 * have 1,000 targets, routes with their own connect timeout get more pools), so a tenant whose origins
 * accept and never answer, with clients keeping requests in flight (HTTP/2 streams), held a socket per
 * request until the replica ran out of file descriptors, and every tenant's requests failed. Here a
 * tenant may have 3 in flight; the count goes back down however an exchange ends.
 */
const LIMIT = 3;
const HOG = 'hog.localhost';
const OTHER = 'other.localhost';
const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };

let gateway: TestGateway;
let first: TestOrigin;
let second: TestOrigin;
let deadUrl: string;
const hogId = randomUUID();
const clients: net.Socket[] = [];

const seen = () => first.seen.length + second.seen.length;

function hogSnapshot(version: number) {
  const [a, b, dead, retried] = ['a', 'b', 'dead', 'retried'].map(() => randomUUID()) as [
    string,
    string,
    string,
    string,
  ];
  return buildSnapshot({
    tenantId: hogId,
    version,
    subdomain: 'hog',
    origins: [
      { id: a, targets: [first.url], timeout_seconds: 30 },
      { id: b, targets: [second.url], timeout_seconds: 30 },
      { id: dead, targets: [deadUrl], health_check: NO_HEALTH_CHECKS, circuit_breaker: { enabled: false } },
      {
        id: retried,
        targets: [deadUrl, first.url],
        health_check: NO_HEALTH_CHECKS,
        circuit_breaker: { enabled: false },
      },
    ],
    routes: [
      { origin_id: a, path_pattern: '/a/*', strip_prefix: '/a' },
      // Its own connect timeout: another pool per target.
      { origin_id: b, path_pattern: '/b/*', strip_prefix: '/b', timeouts: { connect_ms: 1_000 } },
      {
        origin_id: a,
        path_pattern: '/quick/*',
        strip_prefix: '/quick',
        timeouts: { response_headers_ms: 200 },
      },
      { origin_id: dead, path_pattern: '/dead/*', strip_prefix: '/dead' },
      {
        origin_id: retried,
        path_pattern: '/retried/*',
        strip_prefix: '/retried',
        retries: { attempts: 2, budget: { percent: 100, min_retries: 1000 } },
      },
      ...(version > 1 ? [{ origin_id: a, path_pattern: '/v2/*', strip_prefix: '/v2' }] : []),
    ],
  });
}

beforeAll(async () => {
  first = await startTestOrigin('first');
  second = await startTestOrigin('second');
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
  await new Promise((resolve) => closed.close(resolve));
  gateway = await startTestGateway({ GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: String(LIMIT) });
  gateway.store.apply(hogSnapshot(1));
  const otherOrigin = randomUUID();
  gateway.store.apply(
    buildSnapshot({
      subdomain: 'other',
      origins: [{ id: otherOrigin, targets: [first.url] }],
      routes: [{ origin_id: otherOrigin, path_pattern: '/*' }],
    }),
  );
});

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await eventually(
    'every upstream request of the tenant has ended',
    () => upstreamStatuses().every((status) => status.in_flight === 0),
    10_000,
  );
});

afterAll(async () => {
  await gateway?.close();
  await first?.close();
  await second?.close();
});

function upstreamStatuses() {
  const tenant = gateway.store.get(hogId);
  return [...(tenant?.origins.values() ?? [])].flatMap((origin) =>
    (origin.upstreams as unknown as { status(): Array<{ in_flight: number }> }).status(),
  );
}

/** A client of the tenant that sends `path` and keeps its connection open. */
function hold(path: string, host = HOG): net.Socket {
  const socket = net.connect(gateway.gateway.trafficPort, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  clients.push(socket);
  return socket;
}

type Answer = { status: number; retryAfter: string | undefined; body: Record<string, unknown> };

/** The gateway's answer to `path`, or 'reached the origin' when an origin saw the request first. */
function answerOrOrigin(path: string): Promise<Answer | 'reached the origin'> {
  const before = seen();
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      { host: '127.0.0.1', port: gateway.gateway.trafficPort, path, headers: { host: HOG }, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            retryAfter: res.headers['retry-after'] as string | undefined,
            body: JSON.parse(text) as Record<string, unknown>,
          }),
        );
      },
    );
    request.on('error', reject);
    request.end();
    eventually('an origin sees the request', () => seen() > before, 10_000).then(() => {
      resolve('reached the origin');
      request.destroy();
    }, reject);
  });
}

/** The tenant holds LIMIT requests at its origins, and the next one is refused before any origin. */
async function expectLimitHeld(): Promise<Answer> {
  const answer = await answerOrOrigin('/a/slow/over');
  expect(answer).toMatchObject({ status: 503, body: { error: { code: 'tenant_upstream_limit' } } });
  return answer as Answer;
}

/** Exactly LIMIT of the tenant's requests reach its origins: its count is back to zero. */
async function expectWholeLimit(): Promise<void> {
  await eventually(
    'the tenant’s upstream requests have ended',
    () => upstreamStatuses().every((status) => status.in_flight === 0),
    10_000,
  );
  const before = seen();
  for (let index = 0; index < LIMIT; index += 1) hold(`/a/slow/${index}`);
  await eventually('the requests reach the origin', () => seen() >= before + LIMIT, 10_000);
  await expectLimitHeld();
  for (const client of clients.splice(0)) client.destroy();
}

describe('one tenant’s requests in flight to its origins', () => {
  it('past its limit a request is refused 503 before any origin, whatever origins and pools it spreads over; another tenant is served', async () => {
    const before = seen();
    hold('/a/slow/1');
    hold('/b/slow/2');
    hold('/a/slow/3');
    await eventually('three requests reach the origins', () => seen() >= before + LIMIT, 10_000);

    const refused = await expectLimitHeld();
    expect(refused.retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect(refused.body).toEqual({
      error: {
        code: 'tenant_upstream_limit',
        message: `the tenant has its limit of ${LIMIT} requests in flight to its origins on this gateway; try again later`,
      },
    });
    expect(seen()).toBe(before + LIMIT);

    expect((await send(gateway, OTHER, '/hello')).status).toBe(200);

    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toContain(
      `vantageedge_gateway_tenant_upstream_limit_refusals_total{tenant="${hogId}"} 1`,
    );
  });

  it('a client that leaves gives its request back (and only once)', async () => {
    for (let round = 0; round < 2; round += 1) await expectWholeLimit();
  });

  it('an origin that does not answer in time, cannot be reached, answers, or is retried gives it back', async () => {
    expect((await send(gateway, HOG, '/quick/slow/x')).status).toBe(504);
    expect((await send(gateway, HOG, '/dead/x')).status).toBe(502);
    expect((await send(gateway, HOG, '/a/hello')).status).toBe(200);
    for (let index = 0; index < 4; index += 1)
      expect((await send(gateway, HOG, `/retried/r${index}`)).status).toBe(200);
    await expectWholeLimit();
  });

  it('a new config version keeps the count of the requests still in flight', async () => {
    const before = seen();
    for (let index = 0; index < LIMIT; index += 1) hold(`/a/slow/${index}`);
    await eventually('the requests reach the origin', () => seen() >= before + LIMIT, 10_000);
    gateway.store.apply(hogSnapshot(2));
    expect((await send(gateway, HOG, '/v2/hello')).status).toBe(503);
    await expectLimitHeld();
  });
});
