import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, type HttpResponse, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * Regression tests for SIGTERM on a gateway replica, through real processes. Before: the admin listener
 * closed at once (a load balancer's /readyz probe saw a refused connection, not a 503), the traffic
 * listener stopped accepting at once, and a request that never finished kept the process alive until
 * the origin timed out. Now: /readyz answers 503 at once, the listener keeps accepting for
 * GATEWAY_DRAIN_SECONDS, requests in flight finish, and after GATEWAY_SHUTDOWN_TIMEOUT_SECONDS whatever
 * is left is closed and the process exits 0.
 */
const SUBDOMAIN = 'draining';

let origin: TestOrigin;
let draining: LoneGateway;
let deadline: LoneGateway;
const originReceived = new Map<string, () => void>();

function receivedByOrigin(path: string): Promise<void> {
  return new Promise((resolve) => originReceived.set(path, resolve));
}

function snapshotFor(originUrl: string) {
  const originId = randomUUID();
  return buildSnapshot({
    subdomain: SUBDOMAIN,
    origins: [{ id: originId, targets: [originUrl], timeout_seconds: 120 }],
    routes: [{ origin_id: originId, path_pattern: '/*' }],
  });
}

async function exitCode(gateway: LoneGateway, timeoutMs: number): Promise<number | null> {
  await eventually('the gateway process exits', async () => gateway.service.exited(), { timeoutMs });
  return gateway.service.child.exitCode;
}

beforeAll(async () => {
  origin = await startOrigin('shutdown-origin', (req, res) => {
    const url = req.url ?? '/';
    originReceived.get(url)?.();
    if (url.startsWith('/slow/')) {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`slow ${url}`);
      }, 3_000);
      return true;
    }
    if (url.startsWith('/hang/')) return true; // never answers
    return false;
  });
  [draining, deadline] = await Promise.all([
    startLoneGateway({
      snapshots: [snapshotFor(origin.url)],
      env: { GATEWAY_DRAIN_SECONDS: '2', GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: '20' },
    }),
    startLoneGateway({
      snapshots: [snapshotFor(origin.url)],
      env: { GATEWAY_DRAIN_SECONDS: '0', GATEWAY_SHUTDOWN_TIMEOUT_SECONDS: '1' },
    }),
  ]);
}, 240_000);

afterAll(async () => {
  await Promise.all([draining?.close(), deadline?.close()]);
  await origin?.close();
  await stopAllServices();
}, 60_000);

describe('SIGTERM on a gateway replica', () => {
  it('answers 503 on /readyz at once, keeps accepting while draining, finishes requests in flight, exits 0', async () => {
    const slowPaths = ['/slow/a', '/slow/b', '/slow/c'];
    const arrived = Promise.all(slowPaths.map(receivedByOrigin));
    const inFlight = slowPaths.map((path) => draining.request(SUBDOMAIN, path, { timeoutMs: 30_000 }));
    await arrived;

    draining.service.child.kill('SIGTERM');
    await draining.service.waitForLine('"message":"stopping"', 10_000);
    const ready = await fetch(`${draining.adminUrl}/readyz`);
    expect(ready.status, draining.service.tail()).toBe(503);
    expect(await ready.json()).toEqual({ status: 'not_ready', reason: 'shutting down' });

    // Still accepting during the drain: a new client is served and told to reconnect elsewhere.
    const during = await draining.request(SUBDOMAIN, '/fast/during-drain', {
      agent: new http.Agent({ keepAlive: true }),
    });
    expect(during.status, draining.service.tail()).toBe(200);
    expect(during.headers.connection).toBe('close');

    const answers: HttpResponse[] = await Promise.all(inFlight);
    expect(answers.map((answer) => [answer.status, answer.body])).toEqual(
      slowPaths.map((path) => [200, `slow ${path}`]),
    );
    expect(await exitCode(draining, 30_000), draining.service.tail()).toBe(0);
  });

  it('closes what is still in flight at the shutdown timeout and exits 0', async () => {
    const arrived = receivedByOrigin('/hang/forever');
    const hung = deadline.request(SUBDOMAIN, '/hang/forever', { timeoutMs: 60_000 }).then(
      (response) => ({ outcome: 'answered' as const, status: response.status }),
      (error: Error) => ({ outcome: 'cut' as const, error: error.message }),
    );
    await arrived;

    deadline.service.child.kill('SIGTERM');
    // The origin would take 120 s to time out; the shutdown timeout is 1 s.
    expect(await exitCode(deadline, 20_000), deadline.service.tail()).toBe(0);
    expect((await hung).outcome).toBe('cut');
    expect(deadline.service.tail()).toContain(
      'shutdown timeout: closed connections with requests still in flight',
    );
  });
});
