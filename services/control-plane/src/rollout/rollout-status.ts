import {
  readSnapshotsPosition,
  readTenantQuarantine,
  readTenantVersion,
} from '@vantageedge/projections/snapshots/snapshot-state';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import { type ReplicaVersion, readReplicaVersions } from '@vantageedge/shared/snapshot-bus/rollout-registry';
import type pg from 'pg';
import { RolloutWatch } from './rollout-watch.js';

/** The live gateway replicas, each with the version of one tenant it has applied. */
export type ReplicaVersionReader = (tenantId: string) => Promise<ReplicaVersion[]>;

export type RolloutDeps = {
  pool: pg.Pool;
  /** Checkpoint name of the snapshot projector (tests). */
  projection?: string;
  /**
   * Aborted when the process stops: every wait ends at its next look (answered 202 with what it finds),
   * since a wait may last longer than the stop lets a request run, and its change is already stored.
   */
  stopping?: AbortSignal;
} & (
  | {
      /** The gateways' heartbeats (shared/src/snapshot-bus/rollout-registry.ts). */
      redis: RedisClient;
      /** Rollout key prefix and heartbeat TTL; must match the gateways' settings. */
      prefix?: string;
      ttlSeconds?: number;
    }
  | {
      /** make dev: one gateway in the control plane's own process, asked directly (no Redis). */
      replicaVersions: ReplicaVersionReader;
    }
);

export interface ReplicaRollout {
  replica_id: string;
  applied_version: string | null;
  last_seen: string;
  up_to_date: boolean;
}

/** GET /api/v1/tenants/:id/rollout. Versions are event positions as decimal strings. */
export interface RolloutStatus {
  tenant_id: string;
  /** The newest snapshot version of the tenant: what every replica should have applied. */
  target_version: string;
  /**
   * The tenant is deleted, or has no snapshot to serve (its creation was refused by the fold, or a
   * refold dropped it: quarantined_since names the refused event): up to date means "does not have it
   * any more". "0" is the target_version of a tenant that never had a snapshot.
   */
  deleted: boolean;
  /** The snapshot projector's checkpoint (every event up to it is folded into target_version). */
  projected_position: string;
  replicas: ReplicaRollout[];
  /**
   * Every live replica serves target_version (vacuously true when no replica is live), and
   * target_version holds every change of the tenant: false while the tenant is quarantined.
   */
  live_everywhere: boolean;
  /**
   * The position of the tenant's event the snapshot projector could not fold (it parked it): from it on
   * no change of the tenant reaches its snapshot, so no replica gets it (a revoked key keeps working)
   * until the snapshots are refolded. Null when the tenant is not quarantined.
   */
  quarantined_since: string | null;
  /**
   * Why target_version was not published (the snapshot is too large for the bus, or for gateways to
   * decode): no replica will get it, they keep serving the tenant's previous config until a change
   * makes it fit. Null when target_version was published or is still on its way.
   */
  publish_error: string | null;
}

/**
 * The tenant's rollout, or null when the snapshot projector has never seen the tenant (neither folded
 * nor refused any event of it).
 */
export async function readRolloutStatus(deps: RolloutDeps, tenantId: string): Promise<RolloutStatus | null> {
  // The checkpoint first, then the version: the projector commits both together, so a version read
  // after the checkpoint includes every event up to it. Read the other way round (or at once), a
  // commit falling between the two reads pairs the old version with the new checkpoint, and a wait
  // for the change would call it live while replicas still serve the old config.
  const checkpoint = await readSnapshotsPosition(deps.pool, deps.projection);
  const stored = await readTenantVersion(deps.pool, tenantId);
  // After the checkpoint too: a parked event is written with the checkpoint that passes it.
  const quarantinedSince = await readTenantQuarantine(deps.pool, tenantId, deps.projection);
  // A tenant whose creation the fold refused has no snapshot: no replica is to serve any of it.
  const target = stored ?? (quarantinedSince === null ? null : { version: 0n, deleted: true });
  if (!target) return null;
  const replicas =
    'replicaVersions' in deps
      ? await deps.replicaVersions(tenantId)
      : await readReplicaVersions(deps.redis, tenantId, {
          ...(deps.prefix !== undefined ? { prefix: deps.prefix } : {}),
          ...(deps.ttlSeconds !== undefined ? { ttlSeconds: deps.ttlSeconds } : {}),
        });
  const rows = replicas.map((replica): ReplicaRollout => {
    const applied = replica.appliedVersion;
    const upToDate = target.deleted ? applied === null : applied !== null && applied >= target.version;
    return {
      replica_id: replica.replicaId,
      applied_version: applied === null ? null : applied.toString(),
      last_seen: replica.lastSeen.toISOString(),
      up_to_date: upToDate,
    };
  });
  return {
    tenant_id: tenantId,
    target_version: target.version.toString(),
    deleted: target.deleted,
    projected_position: checkpoint.toString(),
    replicas: rows,
    live_everywhere: quarantinedSince === null && rows.every((row) => row.up_to_date),
    quarantined_since: quarantinedSince === null ? null : quarantinedSince.toString(),
    publish_error: target.publishError ?? null,
  };
}

export interface WaitForRolloutOptions {
  tenantId: string;
  /**
   * The position of the command's events. The wait first lets the snapshot projector fold up to it,
   * so target_version includes the change (or the change did not touch the gateway config at all).
   */
  minPosition?: bigint;
  timeoutMs: number;
  pollIntervalMs?: number;
}

export interface RolloutWaitResult {
  /** True when the change is live everywhere; false when the wait timed out (answer 202). */
  done: boolean;
  status: RolloutStatus | null;
  /**
   * Why the last look at the rollout failed (Redis or PostgreSQL unreachable), when it did: the change
   * itself is stored, only its rollout is unknown.
   */
  unreadable?: string;
}

/**
 * Waits until every live replica has applied the tenant's snapshot including `minPosition`, or the
 * timeout passes. Never throws: a timeout or a store that cannot be read (each look is retried until
 * the deadline) ends the wait with `done: false`, and the caller answers 202. Every request waiting on
 * a tenant through the same `deps` shares one look per interval (rollout-watch.ts), whatever their number.
 */
export function waitForRollout(
  deps: RolloutDeps,
  options: WaitForRolloutOptions,
): Promise<RolloutWaitResult> {
  let watch = watches.get(deps);
  if (!watch) {
    watch = new RolloutWatch(
      (tenantId) => readRolloutStatus(deps, tenantId),
      options.pollIntervalMs ?? 25,
      deps.stopping,
    );
    watches.set(deps, watch);
  }
  return watch.wait(options.tenantId, options.minPosition, Date.now() + options.timeoutMs);
}

const watches = new WeakMap<RolloutDeps, RolloutWatch>();
