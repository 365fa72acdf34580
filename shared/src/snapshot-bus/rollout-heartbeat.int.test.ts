import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisClient } from '../redis/client.js';
import { TEST_INFRA } from '../testing/infrastructure.js';
import { createTestRedis } from '../testing/redis.js';
import { startTcpProxy } from '../testing/tcp-proxy.js';
import { startRolloutHeartbeat } from './rollout-heartbeat.js';
import { type ReplicaVersion, readReplicaVersions } from './rollout-registry.js';

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
