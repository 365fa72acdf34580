import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One registry per service process (not prom-client's global one), so several services can run in
 * one process (`make dev`) and tests can create isolated registries.
 */
export function createMetricsRegistry(service: string, { defaultMetrics = true } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'vantageedge_' });
  return registry;
}
