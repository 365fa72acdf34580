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
});
