import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from './metrics.js';

describe('createMetricsRegistry', () => {
  // Regression: the process metrics carried the product prefix (vantageedge_process_…), so standard
  // Node.js dashboards and alerts found nothing.
  it('exposes default process metrics under their standard names, labelled with the service', async () => {
    const registry = createMetricsRegistry('control-plane');
    const text = await registry.metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total\{service="control-plane"\} \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes\{service="control-plane"\} \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds\{service="control-plane"\}/m);
    expect(text).not.toMatch(/^vantageedge_(process|nodejs)_/m);
    expect(registry.contentType).toContain('text/plain');
  });

  it('keeps each registry separate, so two services in one process do not clash', async () => {
    const gateway = createMetricsRegistry('gateway', { defaultMetrics: false });
    const projector = createMetricsRegistry('projector', { defaultMetrics: false });
    const requests = new Counter({
      name: 'vantageedge_gateway_requests_total',
      help: 'Requests handled',
      labelNames: ['status'],
      registers: [gateway],
    });
    requests.inc({ status: '200' }, 3);
    expect(await gateway.metrics()).toContain(
      'vantageedge_gateway_requests_total{status="200",service="gateway"} 3',
    );
    expect(await projector.metrics()).toBe('\n');
    // The same metric name may be registered again in another registry.
    expect(
      () => new Counter({ name: 'vantageedge_gateway_requests_total', help: 'x', registers: [projector] }),
    ).not.toThrow();
  });
});
