import { Redis } from 'ioredis';
import type { RedisClient } from '../redis/client.js';
import { TEST_INFRA, uniqueSuffix } from './infrastructure.js';

export interface TestRedis {
  client: Redis;
  /** Every key this test file writes starts with it, e.g. `ve-test-ratelimit-lx3k9a2b:`. */
  prefix: string;
  /** `prefix + name`. */
  key(name: string): string;
  /** Deletes this file's keys (and only those; never FLUSHALL), then closes the client. */
  cleanup(): Promise<void>;
}

/** A client for the local Redis and a key prefix no other test file or engineer uses. */
export function createTestRedis(purpose = 'test'): TestRedis {
  const client = new Redis(TEST_INFRA.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: false });
  const prefix = `ve-test-${purpose}-${uniqueSuffix()}:`;
  return {
    client,
    prefix,
    key: (name) => `${prefix}${name}`,
    async cleanup() {
      let cursor = '0';
      do {
        const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
        if (keys.length > 0) await client.unlink(...keys);
        cursor = next;
      } while (cursor !== '0');
      await client.quit();
    },
  };
}

/** Every key matching `pattern` (SCAN, so the server is never blocked as by KEYS). */
export async function scanKeys(client: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    found.push(...keys);
    cursor = next;
  } while (cursor !== '0');
  return found;
}
