/**
 * Micro-benchmark of the rate limiter: exact vs fast accuracy (and memory-only), three limiter
 * "replicas" in one process against the local Redis. Writes bench-results/ratelimit.json.
 *
 *   npx tsx services/gateway/src/ratelimit/bench/rate-limit-bench.ts
 *
 * 1. Throughput/latency: 20,000 checks per mode, 64 concurrent callers, a limit that never refuses:
 *    a token bucket (memory, exact, fast) and an exact sliding window (60 s, 1,000,000 per window).
 * 2. Accuracy: 100 rps / burst 200, ~1,000 rps offered for 3 s across the replicas; admitted vs the ideal
 *    (burst + rate × elapsed).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { LOCAL_DEFAULTS } from '@vantageedge/shared/settings/common-settings';
import { Redis } from 'ioredis';
import { MemoryLimitStore } from '../memory-limit-store.js';
import { createRateLimiter, type RateLimiter } from '../rate-limiter.js';
import { RedisLimitStore } from '../redis-limit-store.js';
import { routeWith, tenantWith } from '../test-fixtures.js';

const redisUrl = process.env['REDIS_URL'] ?? LOCAL_DEFAULTS.REDIS_URL;
const prefix = `bench:rl:${Date.now().toString(36)}:`;
const logger = createLogger({ service: 'bench', level: 'error' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const clients: Redis[] = [];

async function replicas(count: number, shared: boolean): Promise<RateLimiter[]> {
  const limiters: RateLimiter[] = [];
  for (let i = 0; i < count; i++) {
    let redis: Redis | undefined;
    if (shared) {
      redis = createRedisClient({ url: redisUrl, commandTimeoutMs: 1_000 }) as Redis;
      clients.push(redis);
      await whenReady(redis);
    }
    limiters.push(
      createRateLimiter({
        store: redis ? new RedisLimitStore(redis) : new MemoryLimitStore(),
        registry: createMetricsRegistry(`b${i}`, { defaultMetrics: false }),
        logger,
        keyPrefix: prefix,
      }),
    );
  }
  return limiters;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function throughput(mode: 'exact' | 'fast' | 'memory' | 'exact-sliding-window') {
  const limiters = await replicas(3, mode !== 'memory');
  const tenant = tenantWith(null);
  const route = routeWith(
    mode === 'exact-sliding-window'
      ? {
          requests_per_second: 1,
          algorithm: 'sliding_window',
          window_seconds: 60,
          limit: 1_000_000,
          scope: 'route',
        }
      : {
          requests_per_second: 1_000_000,
          burst: 10_000_000,
          scope: 'route',
          accuracy: mode === 'fast' ? 'fast' : 'exact',
        },
  );
  const limits = compileRateLimits(tenant, route);
  const who = { tenantId: tenant.id, routeId: route.id, clientIp: '192.0.2.1' };
  const total = 20_000;
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        await limiters[i % 3]!.check(limits, who);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    mode,
    checks: total,
    checks_per_second: Math.round(total / seconds),
    latency_ms: { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1)! },
  };
}

async function accuracy(mode: 'exact' | 'fast') {
  const limiters = await replicas(3, true);
  const tenant = tenantWith(null);
  const route = routeWith({ requests_per_second: 100, burst: 200, scope: 'route', accuracy: mode });
  const limits = compileRateLimits(tenant, route);
  const who = { tenantId: tenant.id, routeId: route.id, clientIp: '192.0.2.2' };
  const pending: Array<Promise<boolean>> = [];
  const started = performance.now();
  let offered = 0;
  while (performance.now() - started < 3_000) {
    for (let j = 0; j < 10; j++)
      pending.push(limiters[offered++ % 3]!.check(limits, who).then((d) => d.outcome === 'allowed'));
    await sleep(10);
  }
  const seconds = (performance.now() - started) / 1000;
  const admitted = (await Promise.all(pending)).filter(Boolean).length;
  const ideal = Math.round(200 + 100 * seconds);
  return {
    mode,
    offered,
    seconds: Number(seconds.toFixed(3)),
    admitted,
    ideal,
    error: admitted - ideal,
    error_percent: Number((((admitted - ideal) / ideal) * 100).toFixed(2)),
    lease_size: limits.descriptors[0]!.leaseSize,
  };
}

const results = {
  benchmark: 'ratelimit',
  at: new Date().toISOString(),
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
  load_average: (await import('node:os')).loadavg(),
  throughput: [
    await throughput('memory'),
    await throughput('exact'),
    await throughput('fast'),
    await throughput('exact-sliding-window'),
  ],
  accuracy: [await accuracy('exact'), await accuracy('fast')],
};
mkdirSync('bench-results', { recursive: true });
writeFileSync('bench-results/ratelimit.json', `${JSON.stringify(results, null, 2)}\n`);
console.log(JSON.stringify(results, null, 2));

const cleaner = new Redis(redisUrl);
const keys = await cleaner.keys(`${prefix}*`);
if (keys.length > 0) await cleaner.del(...keys);
cleaner.disconnect();
for (const client of clients) client.disconnect();
