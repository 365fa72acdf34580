import { randomUUID } from 'node:crypto';
import {
  type StalledConnectTarget,
  startStalledConnectTarget,
} from '@vantageedge/shared/testing/stalled-connect-target';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startHttpOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';

/**
 * Regression test: a connect that timed out (a target that is down or firewalled drops the SYNs) was
 * a `timeout`, which no retry condition names, so a route retrying on `connect_error` answered 504
 * for the half of its requests the balancer sent to that target, though none of them had reached an
 * origin and the other target was up. A connect timeout is a failed connect, as Envoy's
 * `connect-failure` counts it.
 */
describe('retries after a connect that timed out', () => {
  let gateway: TestGateway;
  let stalled: StalledConnectTarget;
  let healthy: HttpOrigin;

  beforeAll(async () => {
    stalled = await startStalledConnectTarget();
    healthy = await startHttpOrigin((_req, res) => res.end('healthy'));
    gateway = await startTestGateway();
    const pair = randomUUID();
    const retries = { backoff: { base_ms: 0, max_ms: 0 }, budget: { percent: 100, min_retries: 1000 } };
    gateway.store.apply(
      buildSnapshot({
        subdomain: 'connect-retry',
        origins: [
          {
            id: pair,
            targets: [stalled.url, healthy.url],
            health_check: { active: { enabled: false }, passive: { enabled: false } },
            circuit_breaker: { enabled: false },
          },
        ],
        routes: [
          {
            origin_id: pair,
            path_pattern: '/connect-error/*',
            timeouts: { connect_ms: 200 },
            retries: { ...retries, on: ['connect_error'] },
          },
          {
            origin_id: pair,
            path_pattern: '/reset-only/*',
            timeouts: { connect_ms: 200 },
            retries: { ...retries, on: ['reset'] },
          },
        ],
      }),
    );
  });

  afterAll(async () => {
    await gateway?.close();
    await healthy?.close();
    await stalled?.close();
  });

  it('retries a request whose connect timed out on the other target when the route retries on connect_error', async () => {
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push(await send(gateway, 'connect-retry.localhost', `/connect-error/${i}`));
    expect(answers.map((answer) => `${answer.status} ${answer.text}`)).toEqual(Array(4).fill('200 healthy'));
    const metrics = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /vantageedge_gateway_upstream_retries_total\{[^}]*outcome="retried",reason="connect_error"\} [1-9]/,
    );
  });

  it('answers 504 upstream_timeout, not retried, when the route does not retry on connect_error', async () => {
    const statuses: number[] = [];
    const codes = new Set<unknown>();
    for (let i = 0; i < 4; i++) {
      const answer = await send(gateway, 'connect-retry.localhost', `/reset-only/${i}`);
      statuses.push(answer.status);
      if (answer.status !== 200) codes.add((answer.json()['error'] as Record<string, unknown>)['code']);
    }
    expect(statuses.filter((status) => status === 504).length).toBeGreaterThan(0);
    expect([...codes]).toEqual(['upstream_timeout']);
  });
});
