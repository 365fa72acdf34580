import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startFixedOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import { STATE_CHANGE_LINES_PER_WINDOW, STATE_CHANGE_WINDOW_MS } from '../upstream/state-change-log.js';

const STATE_CHANGES = /^upstream (target (ejected|healthy)|circuit (open|half-open|closed))$/;

/**
 * Regression: every health and circuit change of a target was a service-log line. An origin answering
 * 5xx (to every request, or to whatever some client sends it) with the shortest cool-down (0.1 s)
 * flips each of its targets four times per request after each cool-down: with a tenant's 1,000
 * targets, tens of thousands of lines a second, each naming the origin and target (2 KiB each), in the
 * log buffer every tenant's lines share.
 */
describe('upstream state-change log lines', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  const tenantId = randomUUID();
  const originId = randomUUID();
  const subdomain = `state-log-${tenantId.slice(0, 8)}`;

  beforeAll(async () => {
    origin = await startFixedOrigin(500, 'broken');
    const originUrl = origin.url;
    gateway = await startTestGateway();
    gateway.store.apply(
      buildSnapshot({
        tenantId,
        subdomain,
        origins: [
          {
            id: originId,
            targets: [`${originUrl}/a`, `${originUrl}/b`],
            circuit_breaker: { consecutive_failures: 1, open_seconds: 0.1 },
            health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 1 } },
          },
        ],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('writes a bounded number of lines for a flapping origin while its metrics count every change', async () => {
    const started = Date.now();
    const statuses = new Set<number>();
    for (let round = 0; round < 15; round++) {
      for (let i = 0; i < 2; i++) statuses.add((await send(gateway, `${subdomain}.localhost`, '/x')).status);
      await sleep(120); // past the cool-down: the targets are admitted again
    }
    expect(statuses).toContain(500);
    // Windows the rounds touched (one, unless the machine is very slow).
    const windows = Math.ceil((Date.now() - started) / STATE_CHANGE_WINDOW_MS) + 1;

    const text = await (await fetch(`${gateway.adminUrl}/metrics`)).text();
    const changes = text
      .split('\n')
      .filter(
        (line) =>
          /^vantageedge_upstream_(circuit|health)_transitions_total\{/.test(line) &&
          line.includes(`tenant="${tenantId}"`),
      )
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
    const logged = gateway.logLines.filter(
      (line) => line['tenant_id'] === tenantId && STATE_CHANGES.test(String(line['message'])),
    );
    expect(changes).toBeGreaterThan(4 * STATE_CHANGE_LINES_PER_WINDOW);
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.length).toBeLessThanOrEqual(windows * STATE_CHANGE_LINES_PER_WINDOW);
  });
});
