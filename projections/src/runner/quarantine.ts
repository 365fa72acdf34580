import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { describeFailure, insertParkedEvents, type ParkedEvent, tenantOf } from './parked-events.js';
import { isTransientError } from './transient-errors.js';

/**
 * The poison-event policy, applied to one batch inside the caller's transaction: one tenant's event
 * that a projection cannot apply must not stop the projection for every tenant.
 *
 * Events of quarantined tenants are parked, not applied (parked-events.ts), but for those the
 * projection applies even so (its tenant's deletion: appliesWhileQuarantined). The others are applied
 * as one batch in a savepoint; when that fails (not transiently), the first failing event is found
 * by halving the batch (firstFailure), the events before it staying applied. `parkFailed` decides
 * whether that event is parked now (and its tenant quarantined, so the tenant's state stays as it
 * was before it instead of diverging) or the batch stops before it, to be tried again later; the
 * events after a parked one are applied the same way. Transient errors
 * (isTransientError) are rethrown: the caller rolls back and retries; nothing is parked for them.
 */

export interface QuarantineOptions<Event extends RecordedEvent> {
  /** Whose parked events these are: the projection, or the rebuild that replaces it. */
  parkAs: string;
  handle(events: readonly Event[]): Promise<void>;
  /** The events the projection folds; the others only move the checkpoint. Default: every event. */
  canHandle?: ((event: RecordedEvent) => event is Event) | undefined;
  /** Events applied even when their tenant is quarantined (ProjectionDefinition.appliesWhileQuarantined). */
  appliesWhileQuarantined?: ((event: RecordedEvent) => boolean) | undefined;
  /** Quarantined tenants, each with the position of its first parked event. */
  quarantined: ReadonlyMap<string, bigint>;
  /** `event` failed on its own: park it now (true), or stop the batch before it (false). */
  parkFailed(event: RecordedEvent, error: unknown): boolean;
}

export interface QuarantineOutcome {
  /** Position of the last event applied, passed over or parked (where the checkpoint goes); null: none. */
  through: bigint | null;
  /** Parked in this batch (written, in the caller's transaction). */
  parked: ParkedEvent[];
  /** The quarantined tenants after the batch. */
  quarantined: ReadonlyMap<string, bigint>;
  /** The event the batch stopped before, failed and not parked (yet), and its error. */
  stopped?: { event: RecordedEvent; error: unknown };
}

export async function applyWithQuarantine<Event extends RecordedEvent>(
  client: pg.PoolClient,
  events: readonly RecordedEvent[],
  options: QuarantineOptions<Event>,
): Promise<QuarantineOutcome> {
  const quarantined = new Map(options.quarantined);
  const parked: ParkedEvent[] = [];
  let through: bigint | null = null;
  let stopped: QuarantineOutcome['stopped'];
  let rest = events;
  while (rest.length > 0) {
    const applicable = rest.filter(
      (event): event is Event => handles(options, event) && !heldBack(options, quarantined, event),
    );
    const failed = await firstFailure(client, applicable, options.handle);
    const failedAt = failed ? rest.indexOf(failed.event) : rest.length;
    for (const event of rest.slice(0, failedAt)) {
      if (handles(options, event) && heldBack(options, quarantined, event)) {
        parked.push(quarantinedEvent(quarantined, event));
      }
      through = event.position;
    }
    if (!failed) break;
    if (!options.parkFailed(failed.event, failed.error)) {
      stopped = failed;
      break;
    }
    const tenantId = tenantOf(failed.event);
    parked.push({ event: failed.event, tenantId, reason: 'failed', error: describeFailure(failed.error) });
    if (tenantId !== null) quarantined.set(tenantId, failed.event.position);
    through = failed.event.position;
    rest = rest.slice(failedAt + 1);
  }
  await insertParkedEvents(client, options.parkAs, parked);
  return { through, parked, quarantined, ...(stopped ? { stopped } : {}) };
}

/**
 * Applies the events up to the first that fails (not transiently), and returns that one with its
 * error (null: all applied). The whole run is tried first, each in a savepoint; a failing run is
 * halved, so one poison event among n costs about 2·log2(n) handler calls, not n: a call can be
 * expensive for every tenant it touches (the snapshot projection loads and saves whole snapshots).
 */
async function firstFailure<Event extends RecordedEvent>(
  client: pg.PoolClient,
  events: readonly Event[],
  handle: (events: readonly Event[]) => Promise<void>,
): Promise<{ event: Event; error: unknown } | null> {
  if (events.length === 0) return null;
  const failed = await failureOf(client, events, handle);
  if (!failed) return null;
  if (events.length === 1) return { event: events[0]!, error: failed.error };
  const half = Math.ceil(events.length / 2);
  return (
    (await firstFailure(client, events.slice(0, half), handle)) ??
    (await firstFailure(client, events.slice(half), handle))
  );
}

/** Applies the events in a savepoint: null when applied, else their (not transient) error, rolled back. */
async function failureOf<Event extends RecordedEvent>(
  client: pg.PoolClient,
  events: readonly Event[],
  handle: (events: readonly Event[]) => Promise<void>,
): Promise<{ error: unknown } | null> {
  await client.query('savepoint projector_events');
  try {
    await handle(events);
    await client.query('release savepoint projector_events');
    return null;
  } catch (error) {
    if (isTransientError(error)) throw error;
    await client.query('rollback to savepoint projector_events');
    await client.query('release savepoint projector_events');
    return { error };
  }
}

function handles<Event extends RecordedEvent>(
  options: QuarantineOptions<Event>,
  event: RecordedEvent,
): event is Event {
  return options.canHandle?.(event) ?? true;
}

/** Whether the event is parked unapplied: its tenant is quarantined, and it is not one applied even so. */
function heldBack(
  options: Pick<QuarantineOptions<RecordedEvent>, 'appliesWhileQuarantined'>,
  quarantined: ReadonlyMap<string, bigint>,
  event: RecordedEvent,
): boolean {
  return quarantinedSince(quarantined, event) !== undefined && !options.appliesWhileQuarantined?.(event);
}

function quarantinedSince(
  quarantined: ReadonlyMap<string, bigint>,
  event: RecordedEvent,
): bigint | undefined {
  const tenantId = tenantOf(event);
  return tenantId === null ? undefined : quarantined.get(tenantId);
}

function quarantinedEvent(quarantined: ReadonlyMap<string, bigint>, event: RecordedEvent): ParkedEvent {
  const tenantId = tenantOf(event);
  const since = quarantinedSince(quarantined, event);
  return {
    event,
    tenantId,
    reason: 'quarantined',
    error: `tenant ${tenantId} quarantined since position ${since}`,
  };
}
