import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The config plane's metrics, registered on the gateway's registry. */
export function createConfigPlaneMetrics(registry: Registry) {
  const registers = [registry];
  const metrics = {
    version: new Gauge({
      name: 'vantageedge_config_version',
      help: 'Snapshot version (event position) applied per tenant',
      labelNames: ['tenant'] as const,
      registers,
    }),
    applyDuration: new Histogram({
      name: 'vantageedge_config_apply_duration_seconds',
      help: 'Time to compile and swap in one tenant snapshot',
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
      registers,
    }),
    lag: new Gauge({
      name: 'vantageedge_config_consumer_lag',
      help: 'Snapshot messages published but not yet consumed by this replica',
      registers,
    }),
    propagationDelay: new Histogram({
      name: 'vantageedge_config_propagation_delay_seconds',
      help: 'From the newest event of a snapshot (occurred_at) to this replica applying it; live updates only',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    versionsWaited: new Counter({
      name: 'vantageedge_config_versions_waited_total',
      help: "Live tenant versions that waited for their tenant's share of the replica's apply time (only the newest waiting one is applied)",
      labelNames: ['tenant'] as const,
      registers,
    }),
    applyErrors: new Counter({
      name: 'vantageedge_config_apply_errors_total',
      help: 'Snapshots that could not be applied (the tenant keeps its previous config)',
      registers,
    }),
    invalidMessages: new Counter({
      name: 'vantageedge_config_invalid_messages_total',
      help: 'Snapshot messages that could not be decoded or validated',
      registers,
    }),
    unverifiedMessages: new Counter({
      name: 'vantageedge_config_unverified_messages_total',
      help: 'Snapshot messages refused because no accepted key signed them (SNAPSHOT_VERIFY_KEYS_FILE)',
      labelNames: ['reason'] as const,
      registers,
    }),
    ready: new Gauge({
      name: 'vantageedge_config_plane_ready',
      help: '1 once the replica has caught up with the snapshot topic (or warm-started while Kafka is down)',
      registers,
    }),
    degraded: new Gauge({
      name: 'vantageedge_config_plane_degraded',
      help: '1 while the snapshot bus is unreachable (serving the last known config)',
      registers,
    }),
  };
  // At 0 from the start: an alert on its increase sees the first refused record.
  for (const reason of ['missing', 'unknown_key', 'invalid'] as const)
    metrics.unverifiedMessages.inc({ reason }, 0);
  return metrics;
}
