import { tenantKeyspace } from '@vantageedge/shared/cache-purge/purge-protocol';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { TEST_INFRA } from '@vantageedge/shared/testing/infrastructure';
import { eventually } from './harness.js';

/**
 * Waits until an entry of the tenant whose body is `body` is in the replicas' shared Redis. A replica
 * writes a response it fills after sending it, so another replica asked at once may not find it yet and
 * fetch from the origin itself; a refill replaces the entry at the same key, so counting entries does
 * not tell when its write landed either.
 */
export async function storedInRedis(keyPrefix: string, tenantId: string, body: string): Promise<void> {
  const redis = createRedisClient({ url: TEST_INFRA.redisUrl, commandTimeoutMs: 2_000, name: 'fill-check' });
  await whenReady(redis);
  try {
    const pattern = `${tenantKeyspace(keyPrefix, tenantId)}*`;
    await eventually(
      `"${body}" is stored in Redis`,
      async () => {
        for (const key of await redis.keys(pattern)) {
          if ((await redis.type(key)) !== 'string') continue;
          const value = await redis.getBuffer(key);
          if (value?.toString('latin1').endsWith(body)) return true;
        }
        return false;
      },
      { timeoutMs: 10_000 },
    );
  } finally {
    redis.disconnect();
  }
}
