import { randomUUID } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';

const HOST = 'retry-gone.localhost';
const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server | undefined): Promise<void> {
  if (server === undefined) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/**
 * A retried request holds what a request to the origins holds (one of the tenant's requests in flight
 * to its origins, its buffered body) through the backoff before the next attempt. A client that leaves
 * gives them back at once, also when it leaves while the gateway reads the end of the answer it drops
 * for the retry (a short 503 is read to its end so its connection stays pooled).
 */
describe('a retried request whose client leaves', () => {
  let gateway: TestGateway;
  let slowUnavailable: Server;
  let healthy: Server;
  /** When the slow 503's head went out, per path. */
  const answered = new Map<string, number>();

  beforeAll(async () => {
    // A 503 announcing a short body, which then comes slowly: its head, a part, then nothing.
    slowUnavailable = createServer((req, res) => {
      req.resume();
      res.writeHead(503, { 'content-type': 'text/plain', 'content-length': '20' });
      res.write('down for', () => answered.set(req.url ?? '', performance.now()));
    });
    healthy = createServer((req, res) => {
      req.resume();
      res.end('fine');
    });
    const [slowUrl, healthyUrl] = await Promise.all([listen(slowUnavailable), listen(healthy)]);
    // One request of the tenant's in flight to its origins at a time: one held is one too many.
    gateway = await startTestGateway({ GATEWAY_MAX_UPSTREAM_REQUESTS_PER_TENANT: '1' });
    const slowOrigin = randomUUID();
    const healthyOrigin = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'retry-gone',
        origins: [
          {
            id: slowOrigin,
            targets: [slowUrl],
            health_check: NO_HEALTH_CHECKS,
            circuit_breaker: { enabled: false },
          },
          { id: healthyOrigin, targets: [healthyUrl], health_check: NO_HEALTH_CHECKS },
        ],
        routes: [
          {
            origin_id: slowOrigin,
            path_pattern: '/unavailable/*',
            retries: {
              on: ['503'],
              backoff: { base_ms: 10_000, max_ms: 10_000 },
              budget: { percent: 100, min_retries: 1000 },
            },
          },
          { origin_id: healthyOrigin, path_pattern: '/fine/*' },
        ],
      }),
    );
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await gateway?.close();
    await Promise.all([close(slowUnavailable), close(healthy)]);
  });

  it('gives its place among the tenant’s requests to origins back when it leaves while the dropped answer is read', async () => {
    // The backoff's jitter at its longest: the full 10 s.
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const path = '/unavailable/left-while-dropped';
    const client = request({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      path,
      headers: { host: HOST },
    });
    client.on('error', () => {});
    client.end();
    while (!answered.has(path)) await new Promise((resolve) => setTimeout(resolve, 10));
    // The 503's head is at the gateway, which reads the rest of it (up to a second) before the retry.
    await new Promise((resolve) => setTimeout(resolve, 300));
    client.destroy();
    for (let i = 0; i < 200 && !gateway.logLines.some((line) => line['path'] === path); i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    vi.restoreAllMocks();

    let status = 0;
    for (let i = 0; i < 30 && status !== 200; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      status = (await send(gateway, HOST, `/fine/after-${i}`)).status;
    }
    expect(status).toBe(200);
  });
});
