import { describe, expect, it } from 'vitest';
import { memoryPolicyProblems } from './redis-memory-policy.js';

const MB = 1024 * 1024;

describe('the Redis memory policy the gateway warns about at start-up', () => {
  it('one Redis for counters and cache: warns whenever maxmemory is set, whatever the policy', () => {
    for (const policy of ['volatile-lru', 'allkeys-lru', 'volatile-ttl']) {
      const problems = memoryPolicyProblems({ kind: 'shared', shared: { maxmemoryBytes: 512 * MB, policy } });
      expect(problems).toEqual([
        {
          redis: 'shared',
          problem: expect.stringMatching(/evict other tenants' counters.*GATEWAY_CACHE_REDIS_URL/),
        },
      ]);
    }
    const full = memoryPolicyProblems({
      kind: 'shared',
      shared: { maxmemoryBytes: 512 * MB, policy: 'noeviction' },
    });
    expect(full).toEqual([{ redis: 'shared', problem: expect.stringMatching(/limits fail open/) }]);
  });

  it('one Redis without maxmemory: nothing is ever evicted, no warning', () => {
    expect(
      memoryPolicyProblems({ kind: 'shared', shared: { maxmemoryBytes: 0, policy: 'volatile-lru' } }),
    ).toEqual([]);
  });

  it('apart: counters at noeviction and the cache at volatile-lru are what it asks for', () => {
    expect(
      memoryPolicyProblems({
        kind: 'split',
        counters: { maxmemoryBytes: 256 * MB, policy: 'noeviction' },
        cache: { maxmemoryBytes: 4096 * MB, policy: 'volatile-lru' },
      }),
    ).toEqual([]);
  });

  it('apart: an evicting counters Redis and an allkeys cache Redis are each named', () => {
    expect(
      memoryPolicyProblems({
        kind: 'split',
        counters: { maxmemoryBytes: 256 * MB, policy: 'volatile-lru' },
        cache: { maxmemoryBytes: 4096 * MB, policy: 'allkeys-lru' },
      }),
    ).toEqual([
      { redis: 'counters', problem: expect.stringMatching(/counters are evicted.*noeviction/) },
      { redis: 'cache', problem: expect.stringMatching(/purged entries served again.*volatile-lru/) },
    ]);
  });
});
