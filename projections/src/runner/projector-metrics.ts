import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ProjectorMetricsSource {
  /** Newest event position in the store. */
  headPosition(): Promise<bigint>;
  /** The projector's committed position. */
  checkpoint(): bigint;
}

/**
 * Metrics every projector exposes, labelled by projection: the committed position, how far it trails
 * the head of the event log (read at scrape time), its batches, and the events it parked (poison
 * events and the later events of their quarantined tenants).
 */
export function createProjectorMetrics(registry: Registry, projection: string) {
  let source: ProjectorMetricsSource | undefined;
  const registers = [registry];
  new Gauge({
    name: 'vantageedge_projector_lag_events',
    help: 'Events appended to the log that the projector has not committed yet (head position - checkpoint)',
    labelNames: ['projection'] as const,
    registers,
    async collect() {
      if (source === undefined) return;
      try {
        const head = await source.headPosition();
        const lag = head - source.checkpoint();
        this.set({ projection }, Number(lag > 0n ? lag : 0n));
      } catch {
        // Event store unreachable: leave the last value; the restart counter tells the story.
      }
    },
  });
  const checkpoint = new Gauge({
    name: 'vantageedge_projector_checkpoint_position',
    help: 'Global event position the projector has committed',
    labelNames: ['projection'] as const,
    registers,
  });
  const batches = new Counter({
    name: 'vantageedge_projector_events_total',
    help: 'Events the projector has committed',
    labelNames: ['projection'] as const,
    registers,
  });
  const batchDuration = new Histogram({
    name: 'vantageedge_projector_batch_duration_seconds',
    help: 'Time to apply and commit one batch of events',
    labelNames: ['projection'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers,
  });
  const restarts = new Counter({
    name: 'vantageedge_projector_restarts_total',
    help: 'Times the projector resubscribed after an error (database or event store unavailable)',
    labelNames: ['projection'] as const,
    registers,
  });
  const parked = new Counter({
    name: 'vantageedge_projector_parked_events_total',
    help: 'Events the projector parked instead of applying: failed ones, and later ones of their tenants',
    labelNames: ['projection'] as const,
    registers,
  });
  const quarantined = new Gauge({
    name: 'vantageedge_projector_quarantined_tenants',
    help: 'Tenants whose events the projection parks since one of them failed (until it is rebuilt)',
    labelNames: ['projection'] as const,
    registers,
  });
  parked.inc({ projection }, 0);
  quarantined.set({ projection }, 0);
  return {
    /** Where the lag gauge reads the head and the checkpoint from. */
    follow(from: ProjectorMetricsSource): void {
      source = from;
    },
    committed(position: bigint, events: number, seconds: number): void {
      checkpoint.set({ projection }, Number(position));
      batches.inc({ projection }, events);
      batchDuration.observe({ projection }, seconds);
    },
    restarted(): void {
      restarts.inc({ projection });
    },
    parked(events: number, quarantinedTenants: number): void {
      if (events > 0) parked.inc({ projection }, events);
      quarantined.set({ projection }, quarantinedTenants);
    },
  };
}

export type ProjectorMetrics = ReturnType<typeof createProjectorMetrics>;
