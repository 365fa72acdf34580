import { randomUUID } from 'node:crypto';
import { type ControlPlaneNewEvent, streamName } from '@vantageedge/shared/domain/events';
import type { EventStore } from '@vantageedge/shared/event-store/port';
import { storableExcerpt } from '@vantageedge/shared/text/excerpt';
import type pg from 'pg';
import { lockCheckpoint } from '../runner/checkpoint.js';
import { inTransaction } from '../runner/in-transaction.js';
import { SNAPSHOT_PROJECTION } from './snapshot-state.js';

/**
 * A refold that no longer folds the event creating a tenant (a stricter fold, its creation parked)
 * leaves that tenant without a snapshot, while every gateway keeps the last one it took: the replicas
 * would serve a config the store no longer holds, for ever, and its rollout status would know no such
 * tenant. So such a refold stops, changing nothing, unless the operator chose to drop these tenants:
 * each then gets a tombstone, which takes it off every gateway, and an event in its stream
 * (TenantDroppedFromGateways) for the audit log. The tombstone's version is that event's position, above
 * any version a gateway holds. A later refold whose fold takes the tenant's events again gives it its
 * snapshot back (a new version, refold-versions.ts).
 *
 * The event is appended before the refold commits: its position must exist for the tombstone, and the
 * event store (EventStoreDB too) shares no transaction with `snapshot_state`. So a refold that fails
 * after it records, for each drop whose tombstone is not stored, a TenantDropRolledBack: the audit log
 * then says the drop did not happen.
 *
 * Relies on `snapshots_before_refold`, the refold's copy of the states before it (refold-versions.ts).
 */

/** A tenant served before the refold that the refolded snapshots no longer hold. */
export interface DroppedTenant {
  tenantId: string;
  /** The tenant's event the fold refused (its creation), when one was: null when none was refused. */
  position: bigint | null;
  eventType: string | null;
  error: string;
  /** The tenant's events after it, parked unfolded. */
  laterEvents: number;
}

/** What the refold's fold refused of a tenant: its first refused event, and how many followed it. */
export interface RefusedEvent {
  position: bigint;
  eventType: string;
  error: string;
  laterEvents: number;
}

const LISTED_TENANTS = 20;
const ERROR_CHARS = 300;

function describe(tenant: DroppedTenant): string {
  if (tenant.position === null) return `tenant ${tenant.tenantId}: ${tenant.error}`;
  const error = tenant.error.replace(/\s+/g, ' ');
  const shown = storableExcerpt(error, ERROR_CHARS);
  return (
    `tenant ${tenant.tenantId}: ${tenant.eventType} at position ${tenant.position} refused (${shown})` +
    `, ${tenant.laterEvents} later event(s) not folded`
  );
}

/** The refold would drop tenants the gateways serve, and was not told to: it changed nothing. */
export class RefoldWouldDropTenantsError extends Error {
  constructor(readonly tenants: readonly DroppedTenant[]) {
    const listed = tenants.slice(0, LISTED_TENANTS).map(describe).join('; ');
    const more = tenants.length > LISTED_TENANTS ? `; and ${tenants.length - LISTED_TENANTS} more` : '';
    super(
      `the refold would drop ${tenants.length} tenant(s) that gateways serve: the snapshot fold now refuses ` +
        `the event creating them, so they would have no snapshot while every gateway kept their old config. ` +
        `${listed}${more}. Nothing was changed: fix the fold (or upcast those events) and refold again, or ` +
        'refold with --drop-unfoldable-tenants to take these tenants off every gateway (a tombstone each, ' +
        'recorded in the audit log as TenantDroppedFromGateways)',
    );
    this.name = 'RefoldWouldDropTenantsError';
  }
}

/** Where a tenant's tombstone stands: the position and time of the event that removed it. */
export interface TombstoneAt {
  position: bigint;
  occurredAt: string;
}

/** A TenantDroppedFromGateways appended by the refold. */
export interface RecordedDrop extends TombstoneAt {
  eventId: string;
  correlationId: string;
}

/**
 * The tenants live before the refold that the refolded `snapshot_state` no longer holds. A tenant
 * deleted before and gone now (its creation refused, so its deletion folded nothing) gets its tombstone
 * back as it was: gateways hold nothing of it either way. One deleted since the snapshot projector last
 * folded it (stopped, or behind) gets its tombstone at its deletion (`deletions`: each tenant's
 * TenantDeleted the refold read), as the projector would have given it: its owner removed it, so it is
 * not a tenant the refold drops.
 */
export async function tenantsLostByRefold(
  client: pg.PoolClient,
  refused: ReadonlyMap<string, RefusedEvent>,
  deletions: ReadonlyMap<string, TombstoneAt> = new Map(),
): Promise<DroppedTenant[]> {
  await client.query(
    `insert into snapshot_state (tenant_id, version, status, snapshot, json_bytes, event_time)
     select p.tenant_id, p.version, 'deleted', null, null, p.event_time from snapshots_before_refold p
     where p.status = 'deleted' and not exists (select 1 from snapshot_state s where s.tenant_id = p.tenant_id)`,
  );
  const { rows } = await client.query<{ tenant_id: string }>(
    `select p.tenant_id from snapshots_before_refold p
     where p.status = 'live' and not exists (select 1 from snapshot_state s where s.tenant_id = p.tenant_id)
     order by p.tenant_id`,
  );
  const deletedSince = new Map<string, TombstoneAt>();
  for (const { tenant_id: tenantId } of rows) {
    const deletion = deletions.get(tenantId);
    if (deletion) deletedSince.set(tenantId, deletion);
  }
  await writeTombstones(client, deletedSince);
  return rows
    .filter(({ tenant_id: tenantId }) => !deletedSince.has(tenantId))
    .map(({ tenant_id: tenantId }) => {
      const event = refused.get(tenantId);
      return event
        ? { tenantId, ...event }
        : {
            tenantId,
            position: null,
            eventType: null,
            error: 'the refolded log holds no snapshot of it',
            laterEvents: 0,
          };
    });
}

/**
 * Records each drop in its tenant's stream (the audit log's entry), into `recorded` as each is appended
 * (a failure midway leaves the ones appended before it there, for rollBackDrops). Appended before the
 * refold commits, so the refold folds past them and the tombstones get versions above any a gateway holds.
 */
export async function recordDrops(
  store: EventStore,
  tenants: readonly DroppedTenant[],
  actor: string,
  recorded: Map<string, RecordedDrop>,
): Promise<Map<string, RecordedDrop>> {
  const correlationId = randomUUID();
  for (const tenant of tenants) {
    const occurredAt = new Date().toISOString();
    const eventId = randomUUID();
    const event: ControlPlaneNewEvent = {
      id: eventId,
      type: 'TenantDroppedFromGateways',
      data: {
        tenant_id: tenant.tenantId,
        refused_position: tenant.position === null ? null : tenant.position.toString(),
        refused_event_type: tenant.eventType,
        error: tenant.error,
      },
      metadata: {
        actor,
        tenant_id: tenant.tenantId,
        correlation_id: correlationId,
        causation_id: null,
        occurred_at: occurredAt,
        schema_version: 1,
      },
    };
    const { position } = await store.appendToStream(streamName.tenant(tenant.tenantId), [event]);
    recorded.set(tenant.tenantId, { position, occurredAt, eventId, correlationId });
  }
  return recorded;
}

/**
 * After a refold that recorded drops failed: records that each drop did not happen
 * (TenantDropRolledBack in its tenant's stream), unless its tombstone stands at its event's position (the
 * commit went through and only its answer was lost: the drop did happen), read once the refold's
 * transaction ended (`projectionName`: its checkpoint row). Returns the tenants whose drop
 * it could not settle (`snapshot_state` or the event store did not answer): their audit log shows a
 * drop that may not have happened.
 */
export async function rollBackDrops(
  store: EventStore,
  pool: pg.Pool,
  recorded: ReadonlyMap<string, RecordedDrop>,
  failure: unknown,
  actor: string,
  projectionName: string = SNAPSHOT_PROJECTION,
): Promise<string[]> {
  let tombstones: Map<string, string>;
  try {
    tombstones = await inTransaction(pool, async (client) => {
      // The refold's transaction holds its projection's checkpoint until it ends, and its commit may
      // still be under way when its client stopped waiting for the answer (a statement deadline, a
      // connection lost): read once it ended, or a drop it then commits would be recorded as rolled back.
      await lockCheckpoint(client, projectionName);
      const { rows } = await client.query<{ tenant_id: string; version: string }>(
        `select tenant_id, version from snapshot_state where tenant_id = any($1::uuid[]) and status = 'deleted'`,
        [[...recorded.keys()]],
      );
      return new Map(rows.map((row) => [row.tenant_id, row.version]));
    });
  } catch {
    return [...recorded.keys()];
  }
  const message = failure instanceof Error ? failure.message : String(failure);
  const error = storableExcerpt(message, ERROR_CHARS);
  const unsettled: string[] = [];
  for (const [tenantId, drop] of recorded) {
    if (tombstones.get(tenantId) === drop.position.toString()) continue;
    const event: ControlPlaneNewEvent = {
      type: 'TenantDropRolledBack',
      data: { tenant_id: tenantId, drop_position: drop.position.toString(), error },
      metadata: {
        actor,
        tenant_id: tenantId,
        correlation_id: drop.correlationId,
        causation_id: drop.eventId,
        occurred_at: new Date().toISOString(),
        schema_version: 1,
      },
    };
    try {
      await store.appendToStream(streamName.tenant(tenantId), [event]);
    } catch {
      unsettled.push(tenantId);
    }
  }
  return unsettled;
}

/** Stores these tenants' tombstones (published by the running projector's publisher). */
export async function writeTombstones(
  client: pg.PoolClient,
  recorded: ReadonlyMap<string, TombstoneAt>,
): Promise<void> {
  if (recorded.size === 0) return;
  const entries = [...recorded];
  await client.query(
    `insert into snapshot_state as s (tenant_id, version, status, snapshot, json_bytes, event_time)
     select tenant_id, version, 'deleted', null, null, event_time
     from unnest($1::uuid[], $2::bigint[], $3::timestamptz[]) as t(tenant_id, version, event_time)
     on conflict (tenant_id) do update set version = excluded.version, status = 'deleted', snapshot = null,
       json_bytes = null, event_time = excluded.event_time, updated_at = now()`,
    [
      entries.map(([tenantId]) => tenantId),
      entries.map(([, { position }]) => position.toString()),
      entries.map(([, { occurredAt }]) => occurredAt),
    ],
  );
}
