import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * One registry per service process (not prom-client's global one), so several services can run in
 * one process (`make dev`) and tests can create isolated registries. Node's process metrics keep their
 * standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes, …) so stock dashboards and
 * alerts work; the `service` label tells the processes apart.
 */
export function createMetricsRegistry(service: string, { defaultMetrics = true } = {}): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if (defaultMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}
