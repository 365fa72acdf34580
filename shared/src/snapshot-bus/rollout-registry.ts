import type { RedisClient } from '../redis/client.js';

/**
 * Rollout heartbeats in Redis: each serving gateway replica says which snapshot version it has applied
 * per tenant; the control plane reads them to answer "is this change live everywhere?".
 *
 *   <prefix>{rollout}:replicas             ZSET  replica id → last heartbeat (ms since epoch)
 *   <prefix>{rollout}:replica:<replica id>  HASH  tenant id → applied version; EXPIRE ttl
 *
 * The `{rollout}` hash tag keeps every key in one Redis Cluster slot, so a pipeline may touch them
 * all. A replica that stops heartbeating drops out after the TTL (its hash expires and its ZSET score
 * is too old); a replica that shuts down cleanly removes itself at once.
 */

export const DEFAULT_ROLLOUT_PREFIX = 've:';
export const DEFAULT_HEARTBEAT_TTL_SECONDS = 15;

export function rolloutKeys(prefix: string = DEFAULT_ROLLOUT_PREFIX) {
  return {
    replicas: `${prefix}{rollout}:replicas`,
    replica: (replicaId: string) => `${prefix}{rollout}:replica:${replicaId}`,
  };
}

export interface ReplicaVersion {
  replicaId: string;
  lastSeen: Date;
  /** The tenant's applied version on this replica; null if the replica does not have the tenant. */
  appliedVersion: bigint | null;
}

/** Replicas whose heartbeat is younger than the TTL, with the version each applied for one tenant. */
export async function readReplicaVersions(
  redis: RedisClient,
  tenantId: string,
  {
    prefix = DEFAULT_ROLLOUT_PREFIX,
    ttlSeconds = DEFAULT_HEARTBEAT_TTL_SECONDS,
    now = Date.now(),
  }: { prefix?: string; ttlSeconds?: number; now?: number } = {},
): Promise<ReplicaVersion[]> {
  const keys = rolloutKeys(prefix);
  const members = await redis.zrangebyscore(keys.replicas, now - ttlSeconds * 1000, '+inf', 'WITHSCORES');
  const replicas: Array<{ replicaId: string; lastSeen: Date }> = [];
  for (let index = 0; index + 1 < members.length; index += 2) {
    replicas.push({ replicaId: members[index]!, lastSeen: new Date(Number(members[index + 1])) });
  }
  if (replicas.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const replica of replicas) {
    pipeline.exists(keys.replica(replica.replicaId));
    pipeline.hget(keys.replica(replica.replicaId), tenantId);
  }
  const results = (await pipeline.exec()) ?? [];
  // A read that failed (timed out, a failover) says nothing about the replica: throw, so the status is
  // unreadable. Taken as "replica gone", every replica could drop out at once and the rollout would
  // look complete (vacuously) while none of them serves it.
  const failed = results.find(([error]) => error)?.[0];
  if (failed) throw failed;
  if (results.length !== replicas.length * 2) throw new Error('rollout heartbeats: replies missing');
  const versions: ReplicaVersion[] = [];
  replicas.forEach((replica, index) => {
    const exists = results[index * 2]?.[1];
    const version = results[index * 2 + 1]?.[1];
    // A ZSET entry whose hash expired is a replica that lost Redis for a while: not counted as live.
    if (exists !== 1) return;
    versions.push({ ...replica, appliedVersion: typeof version === 'string' ? BigInt(version) : null });
  });
  return versions.sort((a, b) => (a.replicaId < b.replicaId ? -1 : 1));
}
