import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { counted, startTestGateway, type TestGateway } from './testing/gateway-harness.js';
import { type HttpOrigin, startFixedOrigin } from './testing/http-origins.js';
import { buildSnapshot } from './testing/snapshots.js';

const running: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const closable of running.splice(0).reverse()) await closable.close();
});

async function gatewayWith(env: Record<string, string> = {}): Promise<TestGateway> {
  const gateway = await startTestGateway(env);
  running.push(gateway);
  return gateway;
}

async function fixedOrigin(): Promise<HttpOrigin> {
  const origin = await startFixedOrigin();
  running.push(origin);
  return origin;
}

/**
 * The in-process gateway the integration tests use is assembled as a replica is (the same config store
 * and upstream sets, from the same settings): what a replica bounds, it bounds too.
 */
describe('a gateway assembled as a replica', () => {
  it('sends at most GATEWAY_HEALTH_PROBES_PER_SECOND health probes, counting the ones it skips', async () => {
    const origin = await fixedOrigin();
    const gateway = await gatewayWith({ GATEWAY_HEALTH_PROBES_PER_SECOND: '1' });
    const originId = randomUUID();
    gateway.store.apply(
      buildSnapshot({
        subdomain: `probed-${originId.slice(0, 8)}`,
        origins: [
          {
            id: originId,
            targets: Array.from({ length: 10 }, (_, i) => `${origin.url}/t${i}`),
            health_check: { active: { interval_seconds: 1, timeout_seconds: 1 } },
          },
        ],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      }),
    );

    await vi.waitFor(
      async () =>
        expect(
          await counted(gateway, 'vantageedge_upstream_probes_skipped_total', 'reason="replica_budget"'),
        ).toBeGreaterThan(0),
      { timeout: 10_000, interval: 200 },
    );
  });

  it('counts and logs a host a snapshot names that another tenant holds', async () => {
    const gateway = await gatewayWith();
    const originId = randomUUID();
    const domain = `shop-${originId.slice(0, 8)}.example.com`;
    // Both snapshots are newer than both verifications: the earlier one holds the domain.
    const tenant = (subdomain: string, verifiedPosition: number) =>
      buildSnapshot({
        subdomain,
        version: 2,
        customDomains: [{ domain, verified_position: verifiedPosition }],
        origins: [{ id: originId, targets: ['http://127.0.0.1:9'] }],
        routes: [{ origin_id: originId, path_pattern: '/*' }],
      });
    const holder = tenant(`holder-${originId.slice(0, 8)}`, 1);
    const claimant = tenant(`claimant-${originId.slice(0, 8)}`, 2);
    gateway.store.apply(holder);
    gateway.store.apply(claimant);

    expect(
      await counted(
        gateway,
        'vantageedge_gateway_host_claims_refused_total',
        'reason="claimed_by_other_tenant"',
      ),
    ).toBe(1);
    const problems = () =>
      gateway.logLines
        .filter((line) => line['message'] === 'snapshot problem' && line['tenant_id'] === claimant.tenant_id)
        .map((line) => String(line['problem']));
    await vi.waitFor(() =>
      expect(problems()).toEqual([expect.stringContaining(`host ${domain} not routed to this tenant`)]),
    );
  });
});
