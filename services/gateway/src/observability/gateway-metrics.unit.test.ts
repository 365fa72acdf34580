import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { GatewayMetrics } from './gateway-metrics.js';

async function requestCountSeries(registry: Registry): Promise<string[]> {
  const text = await registry.metrics();
  return text
    .split('\n')
    .filter((line) => line.startsWith('vantageedge_gateway_request_duration_seconds_count'));
}

describe('GatewayMetrics', () => {
  it('labels request latency by tenant and route by default', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    metrics.observe('t1', 'r1', 200, 0.01, 0.005, undefined);
    metrics.observe('t1', 'r2', 200, 0.01, 0.005, undefined);
    expect(await requestCountSeries(registry)).toEqual([
      'vantageedge_gateway_request_duration_seconds_count{tenant="t1",route="r1",status_class="2xx"} 1',
      'vantageedge_gateway_request_duration_seconds_count{tenant="t1",route="r2",status_class="2xx"} 1',
    ]);
  });

  // Regression: per-tenant × route histograms had no way to be turned down on gateways with many routes.
  it('keeps one series set per tenant when per-route metrics are off (GATEWAY_METRICS_PER_ROUTE=false)', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry, { perRoute: false });
    metrics.observe('t1', 'r1', 200, 0.01, 0.005, undefined);
    metrics.observe('t1', 'r2', 200, 0.01, 0.005, undefined);
    expect(await requestCountSeries(registry)).toEqual([
      'vantageedge_gateway_request_duration_seconds_count{tenant="t1",route="",status_class="2xx"} 2',
    ]);
    expect(await registry.metrics()).not.toMatch(
      /vantageedge_gateway_upstream_duration_seconds_count\{[^}]*route="r/,
    );
  });

  it('removes the series of routes a tenant no longer has and stops their late requests from counting', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    const gone = metrics.forRoute('t1', 'gone');
    const stays = metrics.forRoute('t1', 'stays');
    gone.observe(502, 0.01, 0.005, undefined);
    stays.observe(200, 0.01, 0.005, undefined);
    metrics.observe('t1', 'none', 404, 0.001, undefined, 'route_not_found');
    metrics.countRetry('t1', 'gone', 'retried', 'reset');

    metrics.tenantRetired('t1', [gone, stays], new Set(['stays']));
    gone.observe(200, 0.01, 0.005, undefined); // in flight across the swap
    let text = await registry.metrics();
    expect(text).not.toContain('route="gone"');
    expect(text).toContain('{tenant="t1",route="stays",status_class="2xx"} 1');
    expect(text).toContain('{tenant="t1",route="none",status_class="4xx"} 1');

    metrics.forRoute('t1', 'stays').observe(200, 0.01, 0.005, undefined);
    expect(await registry.metrics()).toContain('{tenant="t1",route="stays",status_class="2xx"} 2');

    metrics.tenantRetired('t1', [stays], undefined);
    stays.observe(200, 0.01, 0.005, undefined);
    text = await registry.metrics();
    expect(text).not.toContain('tenant="t1"');
  });

  it('counts an origin’s error status without a registered name by its class', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    for (const status of [404, 460, 461, 599]) metrics.countError('t1', status, undefined);
    metrics.countError('t1', 429, 'rate_limited');
    const errors = (await registry.metrics())
      .split('\n')
      .filter((line) => line.startsWith('vantageedge_gateway_error_responses_total{'));
    expect(errors).toEqual([
      'vantageedge_gateway_error_responses_total{tenant="t1",status="404",code="origin"} 1',
      'vantageedge_gateway_error_responses_total{tenant="t1",status="4xx",code="origin"} 2',
      'vantageedge_gateway_error_responses_total{tenant="t1",status="5xx",code="origin"} 1',
      'vantageedge_gateway_error_responses_total{tenant="t1",status="429",code="rate_limited"} 1',
    ]);
  });
});
