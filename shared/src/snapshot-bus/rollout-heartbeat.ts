import { randomUUID } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis/client.js';
import { DEFAULT_HEARTBEAT_TTL_SECONDS, DEFAULT_ROLLOUT_PREFIX, rolloutKeys } from './rollout-registry.js';

export interface RolloutHeartbeatOptions {
  redis: RedisClient;
  replicaId: string;
  /** What this replica has applied, read at each full write. */
  appliedVersions: () => ReadonlyMap<string, bigint>;
  prefix?: string;
  ttlSeconds?: number;
  intervalMs?: number;
  onError?: (error: Error) => void;
  /**
   * Another process heartbeats under the same replica id (both overwrite one hash, so rollout status
   * shows whichever wrote last). Called when first seen, and at most once per DUPLICATE_REPORT_INTERVAL_MS
   * while it lasts (the two processes' beats interleave: some find the other's write, some their own).
   */
  onDuplicateReplicaId?: () => void;
}

export interface RolloutHeartbeat {
  /** A tenant's new version: written at once, so a waiting command sees it without waiting a beat. */
  applied(tenantId: string, version: bigint): void;
  removed(tenantId: string): void;
  /** Removes this replica from the registry (clean shutdown). */
  stop(): Promise<void>;
}

const INSTANCE_FIELD = '_replica';
/** How often a replica sharing its id with another process says so again. */
const DUPLICATE_REPORT_INTERVAL_MS = 60_000;

/** Runs a pipeline; a command's error (a pipeline reports them in its results) is thrown. */
async function run(pipeline: ChainableCommander): Promise<Array<[Error | null, unknown]>> {
  const results = (await pipeline.exec()) ?? [];
  const failed = results.find(([error]) => error)?.[0];
  if (failed) throw failed;
  return results;
}

/**
 * Reports this replica's applied versions to Redis (the write side of rollout-registry.ts).
 * Every beat refreshes the ZSET score and the hash TTL; if the hash has expired (Redis was unreachable
 * longer than the TTL), or a tenant's own write failed (its old version would otherwise stay in the
 * hash the beats keep alive), the whole map is written again. Redis errors are reported, never thrown:
 * the gateway keeps serving without Redis, it only becomes invisible to rollout status. One error is
 * reported per outage (until a beat succeeds again), not one per beat.
 */
export function startRolloutHeartbeat(options: RolloutHeartbeatOptions): RolloutHeartbeat {
  const { redis, replicaId } = options;
  /** Written into the replica's hash, so a beat finding another value knows another process shares the id. */
  const instance = randomUUID();
  const keys = rolloutKeys(options.prefix ?? DEFAULT_ROLLOUT_PREFIX);
  const hashKey = keys.replica(replicaId);
  const ttl = options.ttlSeconds ?? DEFAULT_HEARTBEAT_TTL_SECONDS;
  const intervalMs = options.intervalMs ?? Math.max(200, Math.floor((ttl * 1000) / 3));
  let failing = false;
  const report = (error: unknown): void => {
    if (failing) return;
    failing = true;
    options.onError?.(error as Error);
  };
  let stopped = false;
  /** A tenant's write failed: the hash may hold what the replica no longer serves. */
  let behind = false;
  const tenantWriteFailed = (error: unknown): void => {
    behind = true;
    report(error);
  };

  async function writeAll(): Promise<void> {
    behind = false;
    const versions = options.appliedVersions();
    const pipeline = redis.pipeline().del(hashKey);
    const fields: string[] = [];
    for (const [tenantId, version] of versions) fields.push(tenantId, version.toString());
    // An empty hash does not exist in Redis; a marker field keeps "alive with no tenants" visible.
    fields.push(INSTANCE_FIELD, instance);
    pipeline
      .hset(hashKey, ...fields)
      .expire(hashKey, ttl)
      .zadd(keys.replicas, Date.now(), replicaId);
    await run(pipeline).catch((error: unknown) => {
      behind = true;
      throw error;
    });
  }

  let lastDuplicateReport = Number.NEGATIVE_INFINITY;
  async function beat(): Promise<void> {
    const results = await run(
      redis
        .pipeline()
        .hget(hashKey, INSTANCE_FIELD)
        .expire(hashKey, ttl)
        .zadd(keys.replicas, Date.now(), replicaId)
        .zremrangebyscore(keys.replicas, '-inf', Date.now() - ttl * 10_000),
    );
    const writer = results[0]?.[1];
    const duplicate = typeof writer === 'string' && writer !== instance;
    if (duplicate && Date.now() - lastDuplicateReport >= DUPLICATE_REPORT_INTERVAL_MS) {
      lastDuplicateReport = Date.now();
      options.onDuplicateReplicaId?.();
    }
    const renewed = results[1]?.[1];
    if (renewed !== 1 || behind || duplicate) await writeAll();
    failing = false;
  }

  const timer = setInterval(() => {
    if (!stopped) beat().catch(report);
  }, intervalMs);
  timer.unref();
  // A client that has not connected yet refuses commands (no offline queue): the first write then comes
  // when it connects, not a whole beat later, so a replica is visible to rollout status at once.
  if (redis.status !== 'ready') {
    redis.once('ready', () => {
      if (!stopped) writeAll().catch(report);
    });
  }
  writeAll().catch(report);

  return {
    applied(tenantId, version) {
      if (stopped) return;
      run(redis.pipeline().hset(hashKey, tenantId, version.toString()).expire(hashKey, ttl)).catch(
        tenantWriteFailed,
      );
    },
    removed(tenantId) {
      if (stopped) return;
      redis.hdel(hashKey, tenantId).catch(tenantWriteFailed);
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await run(redis.pipeline().zrem(keys.replicas, replicaId).del(hashKey)).catch(report);
    },
  };
}
