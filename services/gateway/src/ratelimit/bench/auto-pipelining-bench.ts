/**
 * The rate limiter's Redis round trip with and without ioredis auto-pipelining, against the local Redis:
 * CONCURRENCY callers (as many as the gateway bench's connections) each run exact-mode checks back to
 * back (one EVALSHA per check, all limits of a request in one call) for SECONDS; the two modes alternate
 * ROUNDS times. Reported per mode (medians over rounds): checks/s and this process's CPU µs per check,
 * the figure that decides how much of a gateway core the limit check takes. Writes
 * bench-results/ratelimit-auto-pipelining-<time>.json.
 *
 *   node --import tsx services/gateway/src/ratelimit/bench/auto-pipelining-bench.ts
 *
 * Environment: REDIS_URL, BENCH_CONCURRENCY (50), BENCH_SECONDS (2), BENCH_ROUNDS (5), BENCH_LIMITS (1:
 * route limit; 2: tenant + route limit).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import { LOCAL_DEFAULTS } from '@vantageedge/shared/settings/common-settings';
import type { Redis } from 'ioredis';
import { createRateLimiter, type RateLimiter } from '../rate-limiter.js';
import { RedisLimitStore } from '../redis-limit-store.js';
import { routeWith, tenantWith } from '../test-fixtures.js';

const redisUrl = process.env['REDIS_URL'] ?? LOCAL_DEFAULTS.REDIS_URL;
const concurrency = Number(process.env['BENCH_CONCURRENCY'] ?? 50);
const seconds = Number(process.env['BENCH_SECONDS'] ?? 2);
const rounds = Number(process.env['BENCH_ROUNDS'] ?? 5);
const limitsPerRequest = Number(process.env['BENCH_LIMITS'] ?? 1);
const prefix = `bench:autopipe:${Date.now().toString(36)}:`;

const never = { requests_per_second: 1_000_000, burst: 10_000_000, accuracy: 'exact' } as const;
const tenant = tenantWith(limitsPerRequest > 1 ? { ...never, scope: 'tenant' } : null);
const route = routeWith({ ...never, scope: 'api_key' });
const limits = compileRateLimits(tenant, route);

interface Mode {
  name: 'auto-pipelining on' | 'auto-pipelining off';
  redis: RedisClient;
  limiter: RateLimiter;
  checksPerSecond: number[];
  cpuUsPerCheck: number[];
}

async function mode(autoPipelining: boolean, n: number): Promise<Mode> {
  // A 1 s command timeout instead of the gateway's 50 ms: on a shared machine a starved Redis would
  // otherwise open the circuit and the run would time local fallback decisions, not Redis calls.
  const redis = createRedisClient({
    url: redisUrl,
    autoPipelining,
    commandTimeoutMs: 1_000,
    name: `bench-autopipe-${n}`,
  });
  await whenReady(redis);
  const registry = createMetricsRegistry(`autopipe${n}`, { defaultMetrics: false });
  const limiter = createRateLimiter({
    store: new RedisLimitStore(redis),
    registry,
    logger: createLogger({ service: 'bench', level: 'error' }),
    keyPrefix: prefix,
  });
  return {
    name: autoPipelining ? 'auto-pipelining on' : 'auto-pipelining off',
    redis,
    limiter,
    checksPerSecond: [],
    cpuUsPerCheck: [],
  };
}

async function run(m: Mode): Promise<void> {
  let checks = 0;
  let failures = 0;
  const deadline = performance.now() + seconds * 1000;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, caller) => {
      const who = {
        tenantId: tenant.id,
        routeId: route.id,
        apiKeyId: `key-${caller}`,
        clientIp: '192.0.2.1',
      };
      while (performance.now() < deadline) {
        const decision = await m.limiter.check(limits, who);
        if (decision.outcome !== 'allowed' || decision.degraded) failures++;
        checks++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  if (failures > 0) process.stderr.write(`[bench] ${m.name}: ${failures} checks not answered by Redis\n`);
  m.checksPerSecond.push(Math.round(checks / elapsed));
  m.cpuUsPerCheck.push(Math.round(((cpu.user + cpu.system) / checks) * 10) / 10);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

const modes = [await mode(false, 0), await mode(true, 1)];
for (const m of modes) await run(m); // warm-up: JIT, script load
for (const m of modes) {
  m.checksPerSecond.length = 0;
  m.cpuUsPerCheck.length = 0;
}
for (let round = 0; round < rounds; round++) {
  for (const m of round % 2 === 0 ? modes : [...modes].reverse()) await run(m);
}

const report = {
  benchmark: 'ratelimit-auto-pipelining',
  at: new Date().toISOString(),
  node: process.version,
  cores: os.availableParallelism(),
  load_average: os.loadavg().map((l) => Math.round(l * 100) / 100),
  settings: { concurrency, seconds, rounds, limits_per_request: limits.descriptors.length },
  modes: modes.map((m) => ({
    mode: m.name,
    checks_per_second: median(m.checksPerSecond),
    cpu_us_per_check: median(m.cpuUsPerCheck),
    rounds: { checks_per_second: m.checksPerSecond, cpu_us_per_check: m.cpuUsPerCheck },
  })),
};
mkdirSync('bench-results', { recursive: true });
const file = `bench-results/ratelimit-auto-pipelining-${report.at.replace(/[:.]/g, '-')}.json`;
writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
for (const m of report.modes) {
  process.stdout.write(
    `${m.mode.padEnd(22)} ${String(m.checks_per_second).padStart(8)} checks/s  ${String(m.cpu_us_per_check).padStart(6)} CPU µs/check\n`,
  );
}
process.stdout.write(`load average ${report.load_average.join(' ')}; JSON: ${file}\n`);

const cleaner = modes[0]!.redis as Redis; // a single server (REDIS_URL)
let cursor = '0';
do {
  const [next, keys] = await cleaner.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
  if (keys.length > 0) await cleaner.unlink(...keys);
  cursor = next;
} while (cursor !== '0');
for (const m of modes) m.redis.disconnect();
