import { randomUUID } from 'node:crypto';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerEvery503, eventually, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * A target of weight 0 is drained (Kong's and APISIX's weight 0), on a real gateway process: it gets no
 * request, is still health-checked, and does not count as a target a traffic split's origin has
 * available, so the split falls back to its other origin rather than to the drained target.
 */
const SUBDOMAIN = 'drained-targets';
const ACTIVE_CHECKS = {
  active: { interval_seconds: 1, timeout_seconds: 1, healthy_threshold: 1, unhealthy_threshold: 1 },
  passive: { enabled: false },
};

let serving: TestOrigin;
let drained: TestOrigin;
let stable: TestOrigin;
let drainedCanary: TestOrigin;
let brokenCanary: TestOrigin;
let gateway: LoneGateway;

/** Requests other than health probes that `origin` received. */
const servedRequests = (origin: TestOrigin) => origin.total() - (origin.hits.get('/health') ?? 0);

beforeAll(async () => {
  [serving, drained, stable, drainedCanary] = await Promise.all([
    startOrigin('serving'),
    startOrigin('drained'),
    startOrigin('stable'),
    startOrigin('drained-canary'),
  ]);
  brokenCanary = await startOrigin('broken-canary', answerEvery503);
  const blueGreenId = randomUUID();
  const stableId = randomUUID();
  const canaryId = randomUUID();
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: [
          {
            id: blueGreenId,
            targets: [
              { url: drained.url, weight: 0 },
              { url: serving.url, weight: 1 },
            ],
            load_balancing: { algorithm: 'least_connections' },
            health_check: ACTIVE_CHECKS,
          },
          { id: stableId, targets: [stable.url] },
          {
            id: canaryId,
            targets: [
              { url: drainedCanary.url, weight: 0 },
              { url: brokenCanary.url, weight: 1 },
            ],
            health_check: ACTIVE_CHECKS,
          },
        ],
        routes: [
          { origin_id: blueGreenId, path_pattern: '/blue-green/*' },
          {
            origin_id: stableId,
            path_pattern: '/canary/*',
            traffic_split: {
              origins: [
                { origin_id: stableId, weight: 1 },
                { origin_id: canaryId, weight: 1000 },
              ],
            },
          },
        ],
      }),
    ],
  });
  await eventually(
    'the gateway serves the tenant',
    async () => (await gateway.request(SUBDOMAIN, '/blue-green/ready')).status === 200,
    { timeoutMs: 30_000 },
  );
}, 180_000);

afterAll(async () => {
  await gateway?.close();
  await Promise.all([serving, drained, stable, drainedCanary, brokenCanary].map((origin) => origin?.close()));
  await stopAllServices();
}, 60_000);

describe('a drained target (weight 0) on a real gateway', () => {
  it('gets no request, while the other target serves them all', async () => {
    for (let i = 0; i < 20; i++) {
      const response = await gateway.request(SUBDOMAIN, `/blue-green/${i}`);
      expect(response.status, gateway.service.tail()).toBe(200);
      expect(response.headers['x-origin']).toBe('serving');
    }
    expect(servedRequests(drained)).toBe(0);
  });

  it('is still health-checked', async () => {
    await eventually('the drained target is probed', async () => (drained.hits.get('/health') ?? 0) > 0, {
      timeoutMs: 10_000,
    });
  });

  it('is not a target the split’s origin has available: the split falls back to its other origin', async () => {
    // Once the canary's one serving target is found down, the canary has no target to offer.
    await eventually(
      'the split falls back to the stable origin',
      async () => (await gateway.request(SUBDOMAIN, '/canary/probe')).headers['x-origin'] === 'stable',
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    for (let i = 0; i < 10; i++) {
      const response = await gateway.request(SUBDOMAIN, `/canary/${i}`);
      expect(response.status, gateway.service.tail()).toBe(200);
      expect(response.headers['x-origin']).toBe('stable');
    }
    expect(servedRequests(drainedCanary)).toBe(0);
  });
});
