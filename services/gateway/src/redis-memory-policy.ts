import type { Logger } from '@vantageedge/shared/observability/logger';
import { type RedisClient, whenReady } from '@vantageedge/shared/redis/client';

/** What a Redis does once full: `CONFIG GET maxmemory` (0 = no limit) and `maxmemory-policy`. */
export interface RedisMemory {
  maxmemoryBytes: number;
  policy: string;
}

/** The gateway's Redis as configured: one for everything, or the counters' and the cache's apart. */
export type RedisLayout =
  | { kind: 'shared'; shared: RedisMemory }
  | { kind: 'split'; counters: RedisMemory; cache: RedisMemory };

export interface MemoryPolicyProblem {
  redis: 'shared' | 'counters' | 'cache';
  problem: string;
}

/**
 * The documented rule (README, "Redis: counters and cache"). Counters must never be evicted: an evicted
 * exhausted bucket or quota counter starts over. Cache entries may be; the purge generations and the
 * tenants' byte-bound keys have no TTL and must not be (an evicted generation brings purged entries
 * back). Warnings only: Redis is an accelerator here and the gateway serves without it.
 */
export function memoryPolicyProblems(layout: RedisLayout): MemoryPolicyProblem[] {
  if (layout.kind === 'shared') {
    const { maxmemoryBytes, policy } = layout.shared;
    if (maxmemoryBytes === 0) return [];
    return [
      {
        redis: 'shared',
        problem:
          policy === 'noeviction'
            ? 'the response cache shares this Redis with the rate-limit and quota counters: once cache fills reach maxmemory, counter writes are refused and limits fail open; set GATEWAY_CACHE_REDIS_URL'
            : `the response cache shares this Redis with the rate-limit and quota counters: at maxmemory (${policy}) a tenant's cache fills evict other tenants' counters and their limits start over; set GATEWAY_CACHE_REDIS_URL, or size maxmemory above every tenant's cache bound plus the counters`,
      },
    ];
  }
  const problems: MemoryPolicyProblem[] = [];
  if (layout.counters.maxmemoryBytes > 0 && layout.counters.policy !== 'noeviction') {
    problems.push({
      redis: 'counters',
      problem: `maxmemory-policy ${layout.counters.policy}: at maxmemory rate-limit and quota counters are evicted and their limits start over; run the counters' Redis with noeviction`,
    });
  }
  if (layout.cache.maxmemoryBytes > 0 && layout.cache.policy.startsWith('allkeys-')) {
    problems.push({
      redis: 'cache',
      problem: `maxmemory-policy ${layout.cache.policy}: purge generations may be evicted and purged entries served again; run the cache's Redis with volatile-lru`,
    });
  }
  return problems;
}

/** undefined when CONFIG is not allowed (managed Redis often renames or forbids it). */
export async function readRedisMemory(redis: RedisClient): Promise<RedisMemory | undefined> {
  try {
    const policy = (await redis.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
    const maxmemory = (await redis.call('CONFIG', 'GET', 'maxmemory')) as string[];
    const maxmemoryBytes = Number(maxmemory[1]);
    if (policy[1] === undefined || !Number.isFinite(maxmemoryBytes)) return undefined;
    return { policy: policy[1], maxmemoryBytes };
  } catch {
    return undefined;
  }
}

/**
 * At start-up, in the background (start-up never waits for Redis): reads each Redis's memory settings
 * and logs every problem of `memoryPolicyProblems`. Resolves with them, for tests.
 */
export async function checkRedisMemoryPolicy(options: {
  redis: RedisClient;
  cacheRedis?: RedisClient | undefined;
  logger: Logger;
  readyTimeoutMs?: number;
}): Promise<MemoryPolicyProblem[]> {
  const { redis, cacheRedis, logger } = options;
  const clients = cacheRedis ? [redis, cacheRedis] : [redis];
  try {
    await Promise.all(clients.map((client) => whenReady(client, options.readyTimeoutMs ?? 60_000)));
  } catch {
    return []; // not reachable yet: the unavailability is logged by the client itself
  }
  const [counters, cache] = await Promise.all(clients.map(readRedisMemory));
  if (counters === undefined || (cacheRedis && cache === undefined)) {
    logger.info(
      'could not read maxmemory-policy (CONFIG GET refused); see README "Redis: counters and cache" for the settings counters need',
    );
    return [];
  }
  const problems = memoryPolicyProblems(
    cacheRedis && cache ? { kind: 'split', counters, cache } : { kind: 'shared', shared: counters },
  );
  for (const { redis: which, problem } of problems)
    logger.warn('redis memory policy', { redis: which, problem });
  return problems;
}
