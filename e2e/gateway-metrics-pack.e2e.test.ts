import { randomUUID } from 'node:crypto';
import { buildSnapshot } from '@vantageedge/gateway/testing/snapshots';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labelsOf, metricsOf, queries } from '../infra/tests/observability-pack.js';
import { answerEvery503, httpRequest, startOrigin, stopAllServices, type TestOrigin } from './harness.js';
import { type LoneGateway, startLoneGateway } from './lone-gateway.js';

/**
 * The operations pack against what a real gateway process exports: after traffic of every kind (served,
 * cached, rate limited, origin 5xx, no route), each product metric an alert, recording rule or
 * dashboard reads from the gateway is in its /metrics, and carries every label the query groups,
 * joins or filters it by. (infra/tests/observability.unit.test.ts checks the names against the code.)
 */
const SUBDOMAIN = 'metrics-pack';
/** Labels Prometheus adds to every scraped series, and a histogram bucket's bound. */
const SCRAPE_LABELS = ['job', 'instance', 'le'];

let served: TestOrigin;
let failing: TestOrigin;
let gateway: LoneGateway;
/** Metric family → the label names its series carry in the scrape. */
let scraped: Map<string, Set<string>>;

/** Families and their label names from the Prometheus text format (histogram series under their family). */
function labelNamesByFamily(text: string): Map<string, Set<string>> {
  const families = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const sample = /^(\w+)(?:\{(.*)\})? \S+$/.exec(line);
    if (!sample?.[1]) continue;
    const family = sample[1].replace(/_(bucket|count|sum)$/, '');
    const names = families.get(family) ?? new Set<string>();
    for (const [, name] of (sample[2] ?? '').matchAll(/(\w+)="(?:[^"\\]|\\.)*"/g)) names.add(name ?? '');
    families.set(family, names);
  }
  return families;
}

beforeAll(async () => {
  served = await startOrigin('served');
  failing = await startOrigin('failing', answerEvery503);
  const servedId = randomUUID();
  const failingId = randomUUID();
  gateway = await startLoneGateway({
    snapshots: [
      buildSnapshot({
        subdomain: SUBDOMAIN,
        origins: [
          { id: servedId, targets: [served.url] },
          { id: failingId, targets: [failing.url] },
        ],
        routes: [
          { origin_id: servedId, path_pattern: '/cached/*', cache_policy: { ttl_seconds: 300 } },
          {
            origin_id: servedId,
            path_pattern: '/limited/*',
            rate_limit: { algorithm: 'token_bucket', requests_per_second: 1, burst: 1 },
          },
          { origin_id: failingId, path_pattern: '/failing/*' },
        ],
      }),
    ],
  });
  const statuses: number[] = [];
  for (const pathname of [
    '/cached/a',
    '/cached/a',
    '/limited/a',
    '/limited/a',
    '/limited/a',
    '/failing/a',
    '/none',
  ])
    statuses.push((await gateway.request(SUBDOMAIN, pathname)).status);
  // The traffic the scrape is about happened: a HIT, a 429, the origin's 503 and an unmatched path.
  expect(statuses).toEqual(expect.arrayContaining([200, 429, 503, 404]));
  const metrics = await httpRequest(`${gateway.adminUrl}/metrics`);
  expect(metrics.status).toBe(200);
  scraped = labelNamesByFamily(metrics.body);
}, 120_000);

afterAll(async () => {
  await gateway?.close();
  await Promise.all([served?.close(), failing?.close()]);
  await stopAllServices();
});

describe("the operations pack's gateway queries", () => {
  const gatewayQueries = queries.filter(({ expr }) =>
    metricsOf(expr).some((name) => /^vantageedge_(gateway|upstream|config)_/.test(name)),
  );

  it('read the request, cache, rate-limit, upstream and config series a serving gateway exports', () => {
    for (const family of [
      'vantageedge_gateway_request_duration_seconds',
      'vantageedge_gateway_upstream_duration_seconds',
      'vantageedge_gateway_error_responses_total',
      'vantageedge_gateway_cache_lookups_total',
      'vantageedge_gateway_ratelimit_decisions_total',
      'vantageedge_upstream_target_healthy',
      'vantageedge_upstream_circuit_state',
      'vantageedge_config_version',
      'vantageedge_config_plane_ready',
    ]) {
      expect(scraped.has(family), `${family} in /metrics`).toBe(true);
      expect(
        gatewayQueries.some(({ expr }) => metricsOf(expr).some((name) => name.startsWith(family))),
        `${family} read by the pack`,
      ).toBe(true);
    }
  });

  it('group, join and filter them only by labels their series carry', () => {
    const missing: string[] = [];
    for (const { where, expr } of gatewayQueries) {
      const families = metricsOf(expr).map((name) =>
        scraped.has(name) ? name : name.replace(/_(bucket|count|sum)$/, ''),
      );
      // A family with no series yet (no transition, no refusal) has nothing to compare.
      if (!families.every((family) => scraped.has(family))) continue;
      const carried = new Set([
        ...SCRAPE_LABELS,
        ...families.flatMap((family) => [...(scraped.get(family) ?? [])]),
      ]);
      for (const label of labelsOf(expr)) if (!carried.has(label)) missing.push(`${where}: ${label}`);
    }
    expect(missing).toEqual([]);
  });
});
