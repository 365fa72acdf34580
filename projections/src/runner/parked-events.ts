import type { RecordedEvent } from '@vantageedge/shared/event-store/port';
import { storableExcerpt } from '@vantageedge/shared/text/excerpt';
import type pg from 'pg';

/**
 * `projection_parked_events` (migration 0190): the events a projection did not apply, because they
 * failed or because their tenant is quarantined there. A tenant is quarantined in a projection from
 * its first parked event on; only a rebuild of the projection (which replaces its rows) ends it.
 */

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>;

export interface ParkedEvent {
  event: RecordedEvent;
  tenantId: string | null;
  /** The event failed (and quarantined its tenant), or its tenant was quarantined already. */
  reason: 'failed' | 'quarantined';
  /** The error, bounded to MAX_ERROR_LENGTH. */
  error: string;
}

const MAX_ERROR_LENGTH = 1000;

/**
 * The longest tenant id an event is parked under. Tenant ids are uuids, but a malformed event may name
 * anything, and a failed event's tenant id is indexed (projection_parked_events_quarantines, whose
 * entries PostgreSQL limits to 2,704 bytes): one too long to index failed the transaction parking it,
 * and the projection retried that batch for ever, every tenant's events waiting behind it. No tenant
 * has a longer id (200 UTF-16 units are at most 600 bytes of UTF-8), so such an event is parked alone.
 */
export const MAX_PARKED_TENANT_ID_LENGTH = 200;

/**
 * The tenant an event belongs to: its metadata's (set by every command), else its data's `tenant_id`
 * (as the folds read it); null for an event of no tenant, or naming one longer than
 * MAX_PARKED_TENANT_ID_LENGTH. Read defensively: the event may be malformed.
 */
export function tenantOf(event: RecordedEvent): string | null {
  const fromMetadata = (event.metadata as { tenant_id?: unknown } | null | undefined)?.tenant_id;
  if (isTenantId(fromMetadata)) return fromMetadata;
  const data = event.data;
  const fromData =
    typeof data === 'object' && data !== null ? (data as { tenant_id?: unknown }).tenant_id : null;
  return isTenantId(fromData) ? fromData : null;
}

function isTenantId(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && value.length <= MAX_PARKED_TENANT_ID_LENGTH;
}

/** The error as one bounded line: `[SQLSTATE] message` for PostgreSQL errors, `Name: message` otherwise. */
export function describeFailure(error: unknown): string {
  let text: string;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    text = typeof code === 'string' ? `[${code}] ${error.message}` : `${error.name}: ${error.message}`;
  } else {
    text = String(error);
  }
  return storableExcerpt(text, MAX_ERROR_LENGTH);
}

/** Quarantined tenants of a projection, each with the position of the event that failed. */
export async function loadQuarantine(db: Queryable, projection: string): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ tenant_id: string; since: string }>(
    `select tenant_id, min(position) as since from projection_parked_events
      where projection = $1 and reason = 'failed' and tenant_id is not null group by tenant_id`,
    [projection],
  );
  return new Map(rows.map((row) => [row.tenant_id, BigInt(row.since)]));
}

/** Inside the transaction that advances the projection's checkpoint past them. */
export async function insertParkedEvents(
  client: pg.PoolClient,
  projection: string,
  parked: readonly ParkedEvent[],
): Promise<void> {
  if (parked.length === 0) return;
  await client.query(
    `insert into projection_parked_events (projection, position, stream, tenant_id, event_type, reason, error)
     select $1, * from unnest($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
     on conflict (projection, position) do nothing`,
    [
      projection,
      parked.map(({ event }) => event.position.toString()),
      parked.map(({ event }) => event.stream),
      parked.map(({ tenantId }) => tenantId),
      parked.map(({ event }) => event.type),
      parked.map(({ reason }) => reason),
      parked.map(({ error }) => error),
    ],
  );
}

/** Forgets a projection's parked events, ending its quarantines (when it is rebuilt). */
export async function clearParkedEvents(db: Queryable, projection: string): Promise<number> {
  const { rowCount } = await db.query('delete from projection_parked_events where projection = $1', [
    projection,
  ]);
  return rowCount ?? 0;
}

/** A rebuild's parked events (parked under its own name) become the projection's, replacing them. */
export async function replaceParkedEvents(
  client: pg.PoolClient,
  projection: string,
  rebuiltAs: string,
): Promise<void> {
  await clearParkedEvents(client, projection);
  await client.query('update projection_parked_events set projection = $1 where projection = $2', [
    projection,
    rebuiltAs,
  ]);
}
