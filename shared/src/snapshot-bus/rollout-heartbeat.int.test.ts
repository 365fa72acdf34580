import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../redis/client.js';
import { TEST_INFRA } from '../testing/infrastructure.js';
import { createTestRedis } from '../testing/redis.js';
import { startTcpProxy } from '../testing/tcp-proxy.js';
import { startRolloutHeartbeat } from './rollout-heartbeat.js';
import { type ReplicaVersion, readReplicaVersions, rolloutKeys } from './rollout-registry.js';

/**
 * A replica's heartbeat through a connection to Redis that is lost for a moment, while the replica
 * applies a tenant's new version and removes another: what rollout status shows once Redis is back.
 */
const redis = createTestRedis('rollout-heartbeat');

afterAll(() => redis.cleanup());

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(read: () => Promise<T>, check: (value: T) => boolean): Promise<T> {
  let value = await read();
  for (let i = 0; i < 200 && !check(value); i++) {
    await sleep(25);
    value = await read();
  }
  return value;
}

describe('rollout heartbeat across a lost Redis connection', () => {
  // Regression test: a version written while the connection was down was lost, and the beats after it
  // only renewed the replica's hash (still there, its TTL not run out), so rollout status showed the
  // old version (and the removed tenant) for as long as the replica lived: every wait on the tenant
  // ran out, though the replica served the change.
  it('shows the versions applied and the tenants removed while the connection was down once it is back', async () => {
    const proxy = await startTcpProxy(TEST_INFRA.redisUrl);
    const client = createRedisClient({ url: proxy.urlFor(TEST_INFRA.redisUrl), commandTimeoutMs: 2_000 });
    const changed = randomUUID();
    const removed = randomUUID();
    const versions = new Map([
      [changed, 1n],
      [removed, 5n],
    ]);
    const replicaId = `gw-${randomUUID()}`;
    const heartbeat = startRolloutHeartbeat({
      redis: client,
      replicaId,
      prefix: redis.prefix,
      intervalMs: 100,
      appliedVersions: () => versions,
    });
    const applied = (listed: ReplicaVersion[]) =>
      listed.find((r) => r.replicaId === replicaId)?.appliedVersion;
    const read = (tenantId: string) => () =>
      readReplicaVersions(redis.client, tenantId, { prefix: redis.prefix });
    try {
      expect(applied(await until(read(changed), (v) => applied(v) === 1n))).toBe(1n);

      proxy.refuseConnections(true);
      proxy.cutClientSide();
      await until(
        async () => client.status,
        (status) => status !== 'ready',
      );
      versions.set(changed, 2n);
      heartbeat.applied(changed, 2n);
      versions.delete(removed);
      heartbeat.removed(removed);
      proxy.refuseConnections(false);

      expect(applied(await until(read(changed), (v) => applied(v) === 2n))).toBe(2n);
      expect(applied(await until(read(removed), (v) => applied(v) === null))).toBeNull();
    } finally {
      await heartbeat.stop();
      client.disconnect();
      await proxy.close();
    }
  }, 30_000);
});

describe('two replicas started with the same replica id', () => {
  // Both write one hash, so rollout status shows whichever wrote last: a change could look live on
  // "every replica" while one of the two still serves the old version. Each must say so.
  it('each reports the other', async () => {
    const replicaId = `gw-${randomUUID()}`;
    const tenantId = randomUUID();
    const reports = { first: 0, second: 0 };
    const start = (versions: Map<string, bigint>, side: keyof typeof reports) =>
      startRolloutHeartbeat({
        redis: redis.client,
        replicaId,
        prefix: redis.prefix,
        intervalMs: 50,
        appliedVersions: () => versions,
        onDuplicateReplicaId: () => {
          reports[side] += 1;
        },
      });
    const first = start(new Map([[tenantId, 1n]]), 'first');
    const second = start(new Map([[tenantId, 2n]]), 'second');
    try {
      const seen = await until(
        async () => ({ ...reports }),
        (now) => now.first > 0 && now.second > 0,
      );
      expect(seen.first, 'reports of the first replica').toBeGreaterThan(0);
      expect(seen.second, 'reports of the second replica').toBeGreaterThan(0);
      // Their beats interleave (each finds the other's write on some beats, its own on others): said once
      // a minute at most, not on every beat that finds the other's.
      await sleep(500);
      expect(reports).toEqual({ first: 1, second: 1 });
    } finally {
      await first.stop();
      await second.stop();
    }
  });

  it('a replica alone under its id reports nothing, though an earlier process left its hash', async () => {
    const replicaId = `gw-${randomUUID()}`;
    let reported = 0;
    const start = () =>
      startRolloutHeartbeat({
        redis: redis.client,
        replicaId,
        prefix: redis.prefix,
        intervalMs: 50,
        appliedVersions: () => new Map(),
        onDuplicateReplicaId: () => {
          reported += 1;
        },
      });
    // What a process killed without its clean stop leaves until the TTL runs out.
    const hash = rolloutKeys(redis.prefix).replica(replicaId);
    await redis.client.hset(hash, '_replica', 'a-killed-process');
    await redis.client.expire(hash, 15);
    const restarted = start();
    try {
      // Each beat renews the replica's score. Once it has moved on twice from the first one seen, a
      // beat has read the hash back after the restarted process's own write, and finished.
      const score = async () =>
        Number(await redis.client.zscore(rolloutKeys(redis.prefix).replicas, replicaId));
      const firstSeen = await until(score, (now) => now > 0);
      const renewed = await until(score, (now) => now > firstSeen);
      expect(await until(score, (now) => now > renewed)).toBeGreaterThan(renewed);
      expect(reported).toBe(0);
    } finally {
      await restarted.stop();
    }
  });
});
