import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import type pg from 'pg';
import { describeFailure, insertParkedEvents, type ParkedEvent, tenantOf } from './parked-events.js';
import { isTransientError } from './transient-errors.js';

/**
 * The poison-event policy, applied to one batch inside the caller's transaction: one tenant's event
 * that a projection cannot apply must not stop the projection for every tenant.
 *
 * Events of quarantined tenants are parked, not applied (parked-events.ts). The others are applied
 * as one batch in a savepoint; when that fails (not transiently), they are applied again one at a
 * time, each in its own savepoint, to find the event that fails. `parkFailed` decides whether that
 * event is parked now (and its tenant quarantined, so the tenant's state stays as it was before it
 * instead of diverging) or the batch stops before it, to be tried again later. Transient errors
 * (isTransientError) are rethrown: the caller rolls back and retries; nothing is parked for them.
 */

export interface QuarantineOptions<Event extends RecordedEvent> {
  /** Whose parked events these are: the projection, or the rebuild that replaces it. */
  parkAs: string;
  handle(events: readonly Event[]): Promise<void>;
  /** The events the projection folds; the others only move the checkpoint. Default: every event. */
  canHandle?: ((event: RecordedEvent) => event is Event) | undefined;
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
  const last = events.at(-1);
  if (!last) return { through: null, parked: [], quarantined: options.quarantined };
  const handled = events.filter((event) => handles(options, event));
  const applicable = handled.filter((event) => quarantinedSince(options.quarantined, event) === undefined);
  if (applicable.length > 0 && (await appliedAsOne(client, applicable, options.handle))) {
    const applied = new Set(applicable);
    const parked = handled
      .filter((event) => !applied.has(event))
      .map((event) => quarantinedEvent(options.quarantined, event));
    await insertParkedEvents(client, options.parkAs, parked);
    return { through: last.position, parked, quarantined: options.quarantined };
  }
  return applyOneByOne(client, events, options);
}

async function applyOneByOne<Event extends RecordedEvent>(
  client: pg.PoolClient,
  events: readonly RecordedEvent[],
  options: QuarantineOptions<Event>,
): Promise<QuarantineOutcome> {
  const quarantined = new Map(options.quarantined);
  const parked: ParkedEvent[] = [];
  let through: bigint | null = null;
  let stopped: QuarantineOutcome['stopped'];
  for (const event of events) {
    if (handles(options, event)) {
      if (quarantinedSince(quarantined, event) !== undefined) {
        parked.push(quarantinedEvent(quarantined, event));
      } else {
        const failed = await failureOf(client, event, options.handle);
        if (failed && !options.parkFailed(event, failed.error)) {
          stopped = { event, error: failed.error };
          break;
        }
        if (failed) {
          const tenantId = tenantOf(event);
          parked.push({ event, tenantId, reason: 'failed', error: describeFailure(failed.error) });
          if (tenantId !== null) quarantined.set(tenantId, event.position);
        }
      }
    }
    through = event.position;
  }
  await insertParkedEvents(client, options.parkAs, parked);
  return { through, parked, quarantined, ...(stopped ? { stopped } : {}) };
}

/** Applies the events in a savepoint: false (rolled back to it) when they fail, not transiently. */
async function appliedAsOne<Event extends RecordedEvent>(
  client: pg.PoolClient,
  events: readonly Event[],
  handle: (events: readonly Event[]) => Promise<void>,
): Promise<boolean> {
  await client.query('savepoint projector_batch');
  try {
    await handle(events);
    return true;
  } catch (error) {
    if (isTransientError(error)) throw error;
    await client.query('rollback to savepoint projector_batch');
    return false;
  }
}

/** Applies one event in a savepoint: null when applied, else its (not transient) error, rolled back. */
async function failureOf<Event extends RecordedEvent>(
  client: pg.PoolClient,
  event: Event,
  handle: (events: readonly Event[]) => Promise<void>,
): Promise<{ error: unknown } | null> {
  await client.query('savepoint projector_event');
  try {
    await handle([event]);
    await client.query('release savepoint projector_event');
    return null;
  } catch (error) {
    if (isTransientError(error)) throw error;
    await client.query('rollback to savepoint projector_event');
    return { error };
  }
}

function handles<Event extends RecordedEvent>(
  options: QuarantineOptions<Event>,
  event: RecordedEvent,
): event is Event {
  return options.canHandle?.(event) ?? true;
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
