import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startFixedOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';
import {
  STATE_CHANGE_LINES_PER_TENANT_WINDOW,
  STATE_CHANGE_LINES_PER_WINDOW,
  STATE_CHANGE_WINDOW_MS,
} from '../upstream/state-change-log.js';

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

/**
 * Regression: the bound was per origin only, so a tenant with many origins (each within its own
 * bound) flapping at once wrote that bound a hundred times over into the log every tenant's lines
 * share. A tenant's lines are bounded too: past its share the rest of the window's changes are one
 * summary line, and another tenant's change in the same window is still logged.
 */
describe('upstream state-change log lines of a tenant with many origins', () => {
  const ORIGINS = 100;
  let origin: HttpOrigin;
  let gateway: TestGateway;
  const flapping = { id: randomUUID(), subdomain: `state-log-many-${randomUUID().slice(0, 8)}` };
  const other = { id: randomUUID(), subdomain: `state-log-other-${randomUUID().slice(0, 8)}` };

  /** A tenant whose origins (one target each) open their circuit and eject their target at the first 500. */
  function tenantOfBrokenOrigins(tenant: { id: string; subdomain: string }, count: number) {
    const originIds = Array.from({ length: count }, () => randomUUID());
    return buildSnapshot({
      tenantId: tenant.id,
      subdomain: tenant.subdomain,
      origins: originIds.map((id) => ({
        id,
        targets: [origin.url],
        circuit_breaker: { consecutive_failures: 1, open_seconds: 60 },
        health_check: { active: { enabled: false }, passive: { unhealthy_threshold: 1 } },
      })),
      routes: originIds.map((id, i) => ({ origin_id: id, path_pattern: `/o${i}/*` })),
    });
  }

  const linesOf = (tenantId: string) =>
    gateway.logLines.filter(
      (line) => line['tenant_id'] === tenantId && STATE_CHANGES.test(String(line['message'])),
    );

  beforeAll(async () => {
    origin = await startFixedOrigin(500, 'broken');
    gateway = await startTestGateway();
    gateway.store.apply(tenantOfBrokenOrigins(flapping, ORIGINS));
    gateway.store.apply(tenantOfBrokenOrigins(other, 1));
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  it('writes at most the tenant’s share of lines for 100 flapping origins; another tenant’s change is still logged', async () => {
    const started = Date.now();
    for (let i = 0; i < ORIGINS; i++) {
      expect((await send(gateway, `${flapping.subdomain}.localhost`, `/o${i}/x`)).status).toBe(500);
    }
    expect((await send(gateway, `${other.subdomain}.localhost`, '/o0/x')).status).toBe(500);

    // Windows the requests touched (one, unless the machine is very slow).
    const windows = Math.ceil((Date.now() - started) / STATE_CHANGE_WINDOW_MS) + 1;

    // Each origin's target was ejected and its circuit opened: 200 changes, each within its origin's bound.
    const logged = linesOf(flapping.id).length;
    expect(logged).toBeGreaterThan(0);
    expect(logged).toBeLessThanOrEqual(windows * STATE_CHANGE_LINES_PER_TENANT_WINDOW);
    expect(linesOf(other.id).map((line) => line['message'])).toEqual(
      expect.arrayContaining(['upstream target ejected', 'upstream circuit open']),
    );
  });
});
