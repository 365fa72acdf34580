import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RedisClient } from '../redis/client.js';
import { type RolloutHeartbeat, startRolloutHeartbeat } from './rollout-heartbeat.js';
import { readReplicaVersions, rolloutKeys } from './rollout-registry.js';

/**
 * Rollout reporting through Redis (rollout-heartbeat.ts writes, rollout-registry.ts reads), run against
 * the single server and against the Redis Cluster (every key under one `{rollout}` hash tag).
 */
export interface RolloutTarget {
  redis: RedisClient;
  /** A ROLLOUT_KEY_PREFIX no other test uses. */
  prefix: string;
  /** A new client made as the services make theirs (createRedisClient), returned before it is connected. */
  newClient(): RedisClient;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 200 && !check(value); i++) {
    await sleep(25);
    value = await read();
  }
  return value;
}

export function describeRolloutContract(name: string, target: () => RolloutTarget): void {
  describe(`rollout registry and heartbeat: ${name}`, () => {
    function replica(versions: Map<string, bigint>, ttlSeconds = 15): RolloutHeartbeat & { id: string } {
      const { redis, prefix } = target();
      const id = `gw-${randomUUID()}`;
      const heartbeat = startRolloutHeartbeat({
        redis,
        replicaId: id,
        prefix,
        ttlSeconds,
        intervalMs: 100,
        appliedVersions: () => versions,
      });
      return Object.assign(heartbeat, { id });
    }

    it('lists every live replica with the version it applied, at once after each change', async () => {
      const { redis, prefix } = target();
      const tenant = randomUUID();
      const a = replica(new Map([[tenant, 3n]]));
      const b = replica(new Map());
      const read = () => readReplicaVersions(redis, tenant, { prefix });
      const listed = await until(read, (v) => v.length === 2);
      expect(listed.map((r) => [r.replicaId, r.appliedVersion]).sort()).toEqual(
        [
          [a.id, 3n],
          [b.id, null],
        ].sort(),
      );
      b.applied(tenant, 4n);
      const after = await until(read, (v) => v.find((r) => r.replicaId === b.id)?.appliedVersion === 4n);
      expect(after.find((r) => r.replicaId === b.id)?.appliedVersion).toBe(4n);
      a.removed(tenant);
      const removed = await until(read, (v) => v.find((r) => r.replicaId === a.id)?.appliedVersion === null);
      expect(removed.find((r) => r.replicaId === a.id)?.appliedVersion).toBeNull();
      await a.stop();
      expect((await read()).map((r) => r.replicaId)).toEqual([b.id]);
      await b.stop();
      expect(await read()).toEqual([]);
    });

    // Regression test: a gateway starts its heartbeat as soon as it is caught up with the topic, which on
    // an empty or small topic comes before its Redis client has connected (a Cluster client must first
    // discover the slots). The first write failed and the replica stayed out of rollout status for a
    // whole beat, so `wait_for_rollout` answered "complete" without it.
    it('shows a replica whose heartbeat started before its client connected as soon as it connects', async () => {
      const { prefix, newClient, redis } = target();
      const client = newClient();
      const tenant = randomUUID();
      const id = `gw-${randomUUID()}`;
      const heartbeat = startRolloutHeartbeat({
        redis: client,
        replicaId: id,
        prefix,
        intervalMs: 60_000,
        appliedVersions: () => new Map([[tenant, 7n]]),
      });
      try {
        const listed = await until(
          () => readReplicaVersions(redis, tenant, { prefix }),
          (v) => v.length === 1,
        );
        expect(listed.map((r) => [r.replicaId, r.appliedVersion])).toEqual([[id, 7n]]);
      } finally {
        await heartbeat.stop();
        client.disconnect();
      }
    });

    it('drops a replica that stopped heartbeating once its TTL has passed', async () => {
      const { redis, prefix } = target();
      const tenant = randomUUID();
      const silent = replica(new Map([[tenant, 1n]]), 3);
      const read = (now?: number) =>
        readReplicaVersions(redis, tenant, { prefix, ttlSeconds: 3, ...(now ? { now } : {}) });
      expect((await until(read, (v) => v.length === 1)).map((r) => r.replicaId)).toEqual([silent.id]);
      // Seen from 4 s later, its last heartbeat is older than the TTL.
      expect(await read(Date.now() + 4_000)).toEqual([]);
      // A replica whose hash expired (Redis lost for longer than the TTL) is not counted as live.
      await redis.del(rolloutKeys(prefix).replica(silent.id));
      expect(await read()).toEqual([]);
      // Its next heartbeat writes everything again.
      expect((await until(read, (v) => v.length === 1))[0]?.appliedVersion).toBe(1n);
      await silent.stop();
    });
  });
}
