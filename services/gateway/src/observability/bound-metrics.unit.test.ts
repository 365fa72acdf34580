import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BoundCounter, BoundHistogram, removeTenantSeries } from './bound-metrics.js';
import { GatewayMetrics } from './gateway-metrics.js';

function registryWithService(): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: 'gateway' });
  return registry;
}

describe('bound metrics', () => {
  it('export exactly what prom-client exports for the same observations (text and JSON)', async () => {
    const ours = registryWithService();
    const theirs = registryWithService();
    const buckets = [0.001, 0.01, 0.1, 1];
    const bound = new BoundHistogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['tenant', 'route'],
      buckets,
      registry: ours,
    });
    const reference = new Histogram({
      name: 'h_seconds',
      help: 'h',
      labelNames: ['tenant', 'route'],
      buckets,
      registers: [theirs],
    });
    const counter = new BoundCounter({
      name: 'c_total',
      help: 'c',
      labelNames: ['tenant', 'outcome'],
      registry: ours,
    });
    const referenceCounter = new Counter({
      name: 'c_total',
      help: 'c',
      labelNames: ['tenant', 'outcome'],
      registers: [theirs],
    });
    const observations: Array<[string, string, number]> = [
      ['t1', 'r"1', 0.0005],
      ['t1', 'r"1', 0.001],
      ['t2', 'r\\2', 0.05],
      ['t1', 'r"1', 3],
    ];
    for (const [tenant, route, value] of observations) {
      bound.series([tenant, route]).observe(value);
      reference.labels(tenant, route).observe(value);
      counter.series([tenant, 'allowed']).inc();
      referenceCounter.labels(tenant, 'allowed').inc();
    }
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.getMetricsAsJSON()).toEqual(await theirs.getMetricsAsJSON());
    // Reset zeroes the series; a series bound before keeps counting into what is exported.
    const kept = bound.series(['t1', 'r"1']);
    ours.resetMetrics();
    kept.observe(0.2);
    expect(await ours.metrics()).toContain('h_seconds_count{service="gateway",tenant="t1",route="r\\"1"} 1');
    expect(await ours.metrics()).toContain('h_seconds_count{service="gateway",tenant="t2",route="r\\\\2"} 0');
  });

  it('bind a route when it is compiled but export its series only once it answered', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    const quiet = metrics.forRoute('t1', 'never-called');
    const busy = metrics.forRoute('t1', 'busy');
    busy.observe(200, 0.003, 0.001, undefined);
    busy.observe(200, 0.004, 0.002, undefined);
    busy.observe(503, 0.5, undefined, 'no_healthy_upstream');
    void quiet;
    const text = await registry.metrics();
    expect(text).not.toContain('never-called');
    expect(text).toContain(
      'vantageedge_gateway_request_duration_seconds_count{tenant="t1",route="busy",status_class="2xx"} 2',
    );
    expect(text).toContain(
      'vantageedge_gateway_request_duration_seconds_count{tenant="t1",route="busy",status_class="5xx"} 1',
    );
    expect(text).toContain('vantageedge_gateway_upstream_duration_seconds_count{tenant="t1",route="busy"} 2');
    expect(text).toContain(
      'vantageedge_gateway_error_responses_total{tenant="t1",status="503",code="no_healthy_upstream"} 1',
    );
  });

  it('remove a tenant’s series of routes no longer live, or all of them, from every bound metric of the registry', async () => {
    const registry = new Registry();
    const byRoute = new BoundCounter({
      name: 'r_total',
      help: 'r',
      labelNames: ['tenant', 'route'],
      registry,
    });
    const byTenant = new BoundCounter({
      name: 't_total',
      help: 't',
      labelNames: ['tenant', 'reason'],
      registry,
    });
    byRoute.series(['t1', 'gone']).inc();
    byRoute.series(['t1', 'stays']).inc();
    byRoute.series(['t2', 'gone']).inc();
    byTenant.series(['t1', 'x']).inc();

    removeTenantSeries(registry, 't1', (route) => route === 'stays');
    let text = await registry.metrics();
    expect(text).not.toContain('r_total{tenant="t1",route="gone"}');
    expect(text).toContain('r_total{tenant="t1",route="stays"} 1');
    expect(text).toContain('r_total{tenant="t2",route="gone"} 1');
    expect(text).toContain('t_total{tenant="t1",reason="x"} 1');
    // A series asked for again starts from zero (the route came back).
    byRoute.series(['t1', 'gone']).inc();
    expect(await registry.metrics()).toContain('r_total{tenant="t1",route="gone"} 1');

    removeTenantSeries(registry, 't1');
    text = await registry.metrics();
    expect(text).not.toContain('tenant="t1"');
    expect(text).toContain('r_total{tenant="t2",route="gone"} 1');
  });

  it('reports requests in flight as counted at scrape time', async () => {
    const registry = new Registry();
    const metrics = new GatewayMetrics(registry);
    metrics.requestsInFlight.inc();
    metrics.requestsInFlight.inc();
    metrics.requestsInFlight.dec();
    expect(await registry.metrics()).toContain('vantageedge_gateway_requests_in_flight 1');
  });
});
