import type { SnapshotState } from '@vantageedge/projections/snapshots/fold';
import type { ControlPlaneEvent } from '@vantageedge/shared/domain/events';
import type {
  ApiKeyEntry,
  SnapshotCertificate,
  TenantSnapshot,
} from '@vantageedge/shared/domain/gateway-config';
import type pg from 'pg';
import { createConfigChangeLock, type HeldLock } from './config-change-lock.js';
import type { TenantEventSource } from './tenant-events.js';
import { EMPTY_FOLD, foldTenantEvents, tenantFoldAt } from './tenant-folds.js';

/**
 * A tenant's whole gateway config as the gateways served it after some event: the snapshot the
 * snapshot projector had built by then, minus the API keys' hashes (which never leave the control
 * plane). `version` is the snapshot version, the position of the newest event folded in: the number
 * each gateway replica reports as applied.
 */
export interface TenantConfig {
  tenant_id: string;
  version: string;
  event_time: string;
  tenant: TenantSnapshot['tenant'];
  /** Verified custom domains: the hosts the gateways answered for it, besides its subdomain. */
  custom_domains: TenantSnapshot['custom_domains'];
  /** Its user list: who its jwt routes admitted when it has no Clerk org. */
  users: TenantSnapshot['users'];
  origins: TenantSnapshot['origins'];
  /** In the order gateways match them. */
  routes: TenantSnapshot['routes'];
  /** Active keys only: what a gateway accepted at that version. */
  api_keys: Array<Omit<ApiKeyEntry, 'key_hash'>>;
  /** The TLS certificates the gateways served, without their (sealed) private keys. */
  certificates: Array<Omit<SnapshotCertificate, 'private_key'>>;
}

export type TenantConfigAt =
  | { status: 'absent' }
  | { status: 'deleted'; version: string; event_time: string }
  | { status: 'live'; config: TenantConfig };

/**
 * Folds the tenant's events with the snapshot projector's own fold. An event the fold refuses is
 * skipped, as the projector skips it, so the result is what the gateways were sent (key hashes
 * included: the caller decides what leaves the control plane).
 */
export function foldTenantSnapshot(events: readonly ControlPlaneEvent[]): SnapshotState | undefined {
  return foldTenantEvents(EMPTY_FOLD, events, 0n).state;
}

/** The tenant's config after `events`: the snapshot without the API keys' hashes. */
export function foldTenantConfig(events: readonly ControlPlaneEvent[]): TenantConfigAt {
  return configOf(foldTenantSnapshot(events));
}

function configOf(state: SnapshotState | undefined): TenantConfigAt {
  if (state === undefined) return { status: 'absent' };
  if (state.status === 'deleted') {
    return { status: 'deleted', version: state.version.toString(), event_time: state.eventTime };
  }
  return { status: 'live', config: toTenantConfig(state.snapshot) };
}

export function toTenantConfig(snapshot: TenantSnapshot): TenantConfig {
  return {
    tenant_id: snapshot.tenant_id,
    version: snapshot.version,
    event_time: snapshot.event_time,
    tenant: snapshot.tenant,
    custom_domains: snapshot.custom_domains,
    users: snapshot.users,
    origins: snapshot.origins,
    routes: snapshot.routes,
    api_keys: snapshot.api_keys.map(({ key_hash: _, ...key }) => key),
    certificates: snapshot.certificates.map(({ private_key: _, ...certificate }) => certificate),
  };
}

/**
 * The tenant's config after the event at `position` (every event up to and including it), folded on
 * from the tenant's cached fold when it is not later than `position` (tenant-folds.ts).
 */
export async function tenantConfigAt(
  source: TenantEventSource,
  tenantId: string,
  position: bigint,
): Promise<TenantConfigAt> {
  return configOf((await tenantFoldAt(source, tenantId, position)).state);
}

/** A tenant's config at any position, and the newest position: what config commands read. */
export interface TenantConfigs {
  head(): Promise<bigint>;
  at(tenantId: string, position: bigint): Promise<TenantConfigAt>;
  /**
   * The config at a past position a rollback restores (or previews): an admin read of the history,
   * bounded as `GET …/config?at_position=` is (the read source's event limit and statement timeout).
   */
  recordedAt(tenantId: string, position: bigint): Promise<TenantConfigAt>;
  /**
   * Runs `work` as the tenant's only config apply or rollback in every control-plane process sharing
   * the database (config-change-lock.ts): the config it reads is what the one before it left. Single
   * creates that a counted limit bounds take the same lock (tenant-limits.ts, `withCountedCreate`).
   */
  exclusively<T>(tenantId: string, work: (lock: HeldLock) => Promise<T>): Promise<T>;
}

/**
 * `source`: the folds of the newest config commands read; `historyReads`: the source of `recordedAt`
 * (default: `source`); `lockPool`: the pool the config-change lock is taken through (default: the
 * source's; its own connection, made with the pool's options, waits without a statement timeout).
 */
export function tenantConfigs(
  source: TenantEventSource,
  historyReads: TenantEventSource = source,
  lockPool: pg.Pool = source.pool,
): TenantConfigs {
  const changes = createConfigChangeLock(lockPool);
  return {
    head: () => source.store.headPosition(),
    at: (tenantId, position) => tenantConfigAt(source, tenantId, position),
    recordedAt: (tenantId, position) => tenantConfigAt(historyReads, tenantId, position),
    exclusively: (tenantId, work) => changes.holding(tenantId, work),
  };
}
