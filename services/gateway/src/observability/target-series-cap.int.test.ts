import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { send, startTestGateway, type TestGateway } from '../testing/gateway-harness.js';
import { type HttpOrigin, startFixedOrigin } from '../testing/http-origins.js';
import { buildSnapshot } from '../testing/snapshots.js';

const MAX_TARGET_SERIES = 8;
const TENANT_SHARE = 0.25; // 2 target labels per tenant
const TENANTS = 5;
const ORIGINS_PER_TENANT = 2;
const TARGETS_PER_ORIGIN = 3;
const REQUESTS_PER_ORIGIN = 6;
const TARGET_FAMILIES = [
  'vantageedge_upstream_target_healthy',
  'vantageedge_upstream_circuit_state',
  'vantageedge_upstream_picks_total',
  'vantageedge_upstream_in_flight',
];

/**
 * Regression: every upstream target of every tenant was a label set of its own in each target family,
 * with or without traffic, so tenants at their origin and target limits grew every scrape of every
 * replica by several lines per target, without a bound per tenant or per replica.
 */
describe('replica-wide bound on upstream target series', () => {
  let origin: HttpOrigin;
  let gateway: TestGateway;
  const run = randomUUID().slice(0, 8);
  const tenants = Array.from({ length: TENANTS }, (_, t) => ({
    id: randomUUID(),
    subdomain: `tcap-${run}-${t}`,
    originIds: Array.from({ length: ORIGINS_PER_TENANT }, () => randomUUID()),
  }));
  /** Origin `o` of the tenant serves `/o<o>/*` from TARGETS_PER_ORIGIN targets (base paths of one server). */
  const snapshotOf = (tenant: (typeof tenants)[number], version: number, timeoutSeconds = 30) =>
    buildSnapshot({
      tenantId: tenant.id,
      version,
      subdomain: tenant.subdomain,
      origins: tenant.originIds.map((id) => ({
        id,
        timeout_seconds: timeoutSeconds,
        targets: Array.from({ length: TARGETS_PER_ORIGIN }, (_, t) => `${origin.url}/t${t}`),
      })),
      routes: tenant.originIds.map((id, o) => ({ origin_id: id, path_pattern: `/o${o}/*` })),
    });

  beforeAll(async () => {
    origin = await startFixedOrigin();
    gateway = await startTestGateway({
      GATEWAY_METRICS_MAX_TARGET_SERIES: String(MAX_TARGET_SERIES),
      GATEWAY_METRICS_TARGET_SERIES_TENANT_SHARE: String(TENANT_SHARE),
    });
    for (const tenant of tenants) gateway.store.apply(snapshotOf(tenant, 1));
  });
  afterAll(async () => {
    await gateway?.close();
    await origin?.close();
  });

  const metricsText = async (): Promise<string> => (await fetch(`${gateway.adminUrl}/metrics`)).text();
  const linesOf = (text: string, family: string, tenantIds: readonly string[]): string[] =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${family}{`) && tenantIds.some((id) => l.includes(`tenant="${id}"`)));
  const label = (line: string, name: string): string => new RegExp(`${name}="([^"]*)"`).exec(line)![1]!;
  const sampleValue = (line: string): number => Number(line.split(' ').pop());
  const sumOf = (lines: string[]): number => lines.reduce((sum, l) => sum + sampleValue(l), 0);
  /** `tenant origin target` of each series of the family that has a target label of its own. */
  const ownTargets = (text: string, family: string, tenantIds: readonly string[]): string[] => [
    ...new Set(
      linesOf(text, family, tenantIds)
        .filter((l) => label(l, 'target') !== 'other')
        .map((l) => `${label(l, 'tenant')} ${label(l, 'origin')} ${label(l, 'target')}`),
    ),
  ];
  const ids = tenants.map((t) => t.id);

  it('exports at most the bound’s target labels, fairly between tenants, and origin totals stay exact', async () => {
    for (const tenant of tenants) {
      for (let o = 0; o < ORIGINS_PER_TENANT; o++) {
        for (let i = 0; i < REQUESTS_PER_ORIGIN; i++) {
          expect((await send(gateway, `${tenant.subdomain}.localhost`, `/o${o}/x`)).status).toBe(200);
        }
      }
    }

    const text = await metricsText();
    for (const family of TARGET_FAMILIES) {
      const own = ownTargets(text, family, ids);
      expect(own.length, family).toBeLessThanOrEqual(MAX_TARGET_SERIES);
      for (const tenant of tenants) {
        const ofTenant = own.filter((series) => series.startsWith(`${tenant.id} `));
        expect(ofTenant.length, family).toBeLessThanOrEqual(MAX_TARGET_SERIES * TENANT_SHARE);
      }
    }
    // Folded targets keep their origin: picks and healthy targets add up per origin.
    for (const tenant of tenants) {
      for (const originId of tenant.originIds) {
        const ofOrigin = (family: string) =>
          linesOf(text, family, [tenant.id]).filter((l) => label(l, 'origin') === originId);
        expect(sumOf(ofOrigin('vantageedge_upstream_picks_total'))).toBe(REQUESTS_PER_ORIGIN);
        expect(sumOf(ofOrigin('vantageedge_upstream_target_healthy'))).toBe(TARGETS_PER_ORIGIN);
        expect(sumOf(ofOrigin('vantageedge_upstream_circuit_state'))).toBe(0);
      }
    }
    const folded = linesOf(text, 'vantageedge_upstream_metrics_folded_targets', ids);
    expect(sumOf(folded)).toBe(TENANTS * ORIGINS_PER_TENANT * TARGETS_PER_ORIGIN - MAX_TARGET_SERIES);
  });

  it('removes a removed tenant’s series and gives its labels to targets built after', async () => {
    const removed = tenants[0]!;
    const waiting = tenants[TENANTS - 1]!;
    expect(ownTargets(await metricsText(), 'vantageedge_upstream_target_healthy', [waiting.id])).toEqual([]);

    gateway.store.remove(removed.id);
    // The removed tenant's upstream sets close once their pools have drained.
    await vi.waitFor(async () => expect(await metricsText()).not.toContain(`tenant="${removed.id}"`), {
      timeout: 10_000,
    });
    // A changed origin config rebuilds the waiting tenant's upstream sets.
    gateway.store.apply(snapshotOf(waiting, 2, 20));
    await vi.waitFor(
      async () => {
        const own = ownTargets(await metricsText(), 'vantageedge_upstream_target_healthy', [waiting.id]);
        expect(own).toHaveLength(MAX_TARGET_SERIES * TENANT_SHARE);
      },
      { timeout: 10_000 },
    );
    const text = await metricsText();
    const remaining = tenants.filter((t) => t !== removed).map((t) => t.id);
    expect(ownTargets(text, 'vantageedge_upstream_target_healthy', remaining)).toHaveLength(
      MAX_TARGET_SERIES,
    );
    expect(sumOf(linesOf(text, 'vantageedge_upstream_metrics_folded_targets', remaining))).toBe(
      (TENANTS - 1) * ORIGINS_PER_TENANT * TARGETS_PER_ORIGIN - MAX_TARGET_SERIES,
    );
  });
});
