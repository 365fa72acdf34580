import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { RETRY_BODY_BUFFER_BYTES } from './forward-with-policy.js';

const NO_HEALTH_CHECKS = { active: { enabled: false }, passive: { enabled: false } };
/** The replica's retry buffer: four largest bodies, so one tenant's quarter holds exactly one. */
const BUDGET = 4 * RETRY_BODY_BUFFER_BYTES;

interface Target {
  url: string;
  /** Requests whose body arrived whole. */
  readonly seen: IncomingMessage[];
  close(): Promise<void>;
}

/** An origin target that reads each request's body, then does `behave` with it. */
async function target(behave: (req: IncomingMessage) => void): Promise<Target> {
  const seen: IncomingMessage[] = [];
  const server: Server = createServer((req) => {
    req.resume();
    req.on('end', () => {
      seen.push(req);
      behave(req);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  expect(condition()).toBe(true);
}

/**
 * A retryable request with a body is read into memory first, so it can be sent again. Those bodies
 * share one budget per replica (GATEWAY_RETRY_BUFFER_BYTES), of which one tenant's requests hold at
 * most a quarter: a tenant whose clients send many bodies to an origin that never answers cannot make
 * the replica buffer (connections × HTTP/2 streams × 64 KiB, gigabytes), nor take the others' retries.
 * A body that does not fit is sent once, without retries.
 */
describe('retry body buffers shared by tenants', () => {
  let gateway: TestGateway;
  let holding: Target;
  let hogResetting: Target;
  let quietResetting: Target;

  function tenant(subdomain: string, resetting: Target, holdingUrl?: string) {
    const resetOrigin = randomUUID();
    const holdOrigin = randomUUID();
    const retries = { methods: ['POST'], backoff: { base_ms: 0, max_ms: 0 } };
    return buildSnapshot({
      subdomain,
      origins: [
        {
          id: resetOrigin,
          targets: [resetting.url],
          health_check: NO_HEALTH_CHECKS,
          circuit_breaker: { enabled: false },
        },
        ...(holdingUrl === undefined
          ? []
          : [{ id: holdOrigin, targets: [holdingUrl], health_check: NO_HEALTH_CHECKS }]),
      ],
      routes: [
        { origin_id: resetOrigin, path_pattern: '/reset/*', retries },
        ...(holdingUrl === undefined ? [] : [{ origin_id: holdOrigin, path_pattern: '/hold/*', retries }]),
      ] as never,
    });
  }

  beforeAll(async () => {
    holding = await target(() => {}); // never answers
    hogResetting = await target((req) => req.socket.destroy());
    quietResetting = await target((req) => req.socket.destroy());
    gateway = await startTestGateway({ GATEWAY_RETRY_BUFFER_BYTES: String(BUDGET) });
    gateway.store.apply(tenant('hog', hogResetting, holding.url));
    gateway.store.apply(tenant('quiet', quietResetting));
  });

  afterAll(async () => {
    await gateway?.close();
    await Promise.all([holding, hogResetting, quietResetting].map((t) => t?.close()));
  });

  const post = (host: string, path: string) => send(gateway, host, path, { method: 'POST', body: 'order' });

  it("holds one tenant's buffered bodies to its share, sending the rest once, and leaves the others' retries", async () => {
    // Both tenants' POSTs are retried while nothing is buffered.
    expect((await post('hog.localhost', '/reset/a')).status).toBe(502);
    expect(hogResetting.seen).toHaveLength(2);

    // One of the hog's bodies, as large as a retry buffer, waits for an origin that never answers.
    const held = request({
      host: '127.0.0.1',
      port: gateway.gateway.trafficPort,
      method: 'POST',
      path: '/hold/x',
      headers: { host: 'hog.localhost', 'content-length': String(RETRY_BODY_BUFFER_BYTES) },
    });
    held.on('error', () => {});
    held.end(Buffer.alloc(RETRY_BODY_BUFFER_BYTES, 'x'));
    await until(() => holding.seen.length === 1);

    // The hog's share is taken: its next body is sent once, not buffered for a retry.
    expect((await post('hog.localhost', '/reset/b')).status).toBe(502);
    expect(hogResetting.seen).toHaveLength(3);
    // Another tenant's request is still buffered and retried.
    expect((await post('quiet.localhost', '/reset/c')).status).toBe(502);
    expect(quietResetting.seen).toHaveLength(2);

    // The held request's client leaves: its buffer is given back, and the hog's POSTs retry again.
    held.destroy();
    await until(() => holding.seen[0]!.socket.destroyed);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await post('hog.localhost', '/reset/d')).status).toBe(502);
    expect(hogResetting.seen).toHaveLength(5);
  });
});
