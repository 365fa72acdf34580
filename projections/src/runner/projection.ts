import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';

/** What a projection's handler gets besides its events. */
export interface ProjectionContext {
  /** The projector's open transaction; it also advances the checkpoint and commits. */
  client: pg.PoolClient;
}

/**
 * A projection: how a batch of events changes its PostgreSQL state. The projector runner owns the
 * rest (subscription, batching, back-off, checkpoint, transaction), the same for every projection.
 */
export interface ProjectionDefinition<Event extends RecordedEvent = RecordedEvent> {
  /** Its checkpoint row in `projection_checkpoints`. */
  name: string;
  /** The events it folds; the others only move the checkpoint. Default: every event. */
  canHandle?: (event: RecordedEvent) => event is Event;
  /**
   * Events applied even when their tenant is quarantined (quarantine.ts): its deletion, which must not
   * wait for the quarantine to end (a tenant whose events keep failing would otherwise never leave the
   * gateways). Default: none.
   */
  appliesWhileQuarantined?: ((event: RecordedEvent) => boolean) | undefined;
  /** Applies the batch (in log order, never empty) inside the runner's transaction. */
  handle(events: readonly Event[], context: ProjectionContext): Promise<void>;
}
