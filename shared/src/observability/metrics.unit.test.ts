import { Counter } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMetricsRegistry } from './metrics.js';

describe('createMetricsRegistry', () => {
  it('exposes default process metrics, prefixed and labelled with the service', async () => {
    const registry = createMetricsRegistry('control-plane');
    const text = await registry.metrics();
    expect(text).toMatch(/^vantageedge_process_cpu_user_seconds_total\{service="control-plane"\} \d/m);
    expect(text).toMatch(/^vantageedge_process_resident_memory_bytes\{service="control-plane"\} \d/m);
    expect(text).toMatch(/^vantageedge_nodejs_eventloop_lag_seconds\{service="control-plane"\}/m);
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
