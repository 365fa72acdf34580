import { randomUUID } from 'node:crypto';
import {
  type CompiledRateLimits,
  compileRateLimits,
} from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import type { RedisClient } from '@vantageedge/shared/redis/client';
import {
  createClusterClient,
  createTestRedisCluster,
  killRedisNode,
  masterAddresses,
  masterOf,
  restoreClusters,
} from '@vantageedge/shared/testing/cluster';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimiter } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith, withinOneAlignedWindow } from './test-fixtures.js';

/**
 * A Redis Cluster master killed (SIGKILL) under continuous rate-limit load from three limiter
 * "replicas", each with its own Cluster client. Six tenants, two per master: one limit fails open, one
 * fails closed. The cluster promotes the dead master's replica (cluster-node-timeout 2 s). Measured and
 * printed per tenant: admissions against the limit, decisions made without Redis, 503s. The policy held:
 *
 * - no check throws, and a fail-open limit never answers "store unavailable" (so never a 503);
 * - fail closed: admissions stay within the limit plus what the dead master acknowledged but had not yet
 *   replicated (replication is asynchronous; asserted: at most one second of this tenant's traffic);
 * - fail open: admissions stay within the limit plus each replica's local allowance (limit / share,
 *   share 1 by default) for the time Redis was unusable — the documented fail-open bound.
 */
const REPLICAS = 3;
const WINDOW_SECONDS = 60;
const logger = createLogger({ service: 'test', level: 'error' });
const redis = await createTestRedisCluster('rl-failover');
const clients: RedisClient[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await restoreClusters();
  await redis.cleanup();
}, 240_000);

interface Tally {
  allowed: number;
  allowedWithoutRedis: number;
  limited: number;
  unavailable: number;
  thrown: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Tenant ids whose `{tenant}` hash tag lives on `master`, `count` of them. */
async function tenantsOn(master: string, count: number): Promise<string[]> {
  const found: string[] = [];
  while (found.length < count) {
    const id = randomUUID();
    if ((await masterOf(redis.client, `${redis.prefix}rl:{${id}}:x`)) === master) found.push(id);
  }
  return found;
}

describe('rate limits while a Redis Cluster master fails over', () => {
  it('keep exact within the stated bound, and no fail-open limit ever answers unavailable', async () => {
    const limiters: RateLimiter[] = [];
    for (let i = 0; i < REPLICAS; i++) {
      // A generous command timeout: this tests correctness on a loaded 2-core machine, not latency.
      const client = await createClusterClient(`limiter-${i}`, 1_000);
      clients.push(client);
      limiters.push(
        createRateLimiter({
          store: new RedisLimitStore(client),
          registry: createMetricsRegistry(`limiter-${i}`, { defaultMetrics: false }),
          logger,
          keyPrefix: redis.prefix,
        }),
      );
    }
    const masters = await masterAddresses(redis.client);
    expect(masters).toHaveLength(3);
    const victim = masters[0]!;

    interface Subject {
      name: string;
      master: string;
      policy: 'open' | 'closed';
      limits: CompiledRateLimits;
      tally: Tally;
    }
    const subjects: Subject[] = [];
    // Offered at a fixed rate (sent without waiting for answers, so a slow machine does not lower it):
    // PER_SECOND per tenant for RUN_MS; the kill comes at KILL_AT_MS and the limit is reached ~3 s after
    // a failover of ~4 s, so requests keep being admitted across it.
    const RUN_MS = 14_000;
    const KILL_AT_MS = 3_000;
    const PER_SECOND = 100;
    const limit = PER_SECOND * 10;
    for (const master of masters) {
      const [openId, closedId] = await tenantsOn(master, 2);
      for (const [policy, tenantId] of [
        ['open', openId!],
        ['closed', closedId!],
      ] as const) {
        const tenant = tenantWith(null, tenantId as ReturnType<typeof randomUUID>);
        const route = routeWith({
          requests_per_second: 1,
          algorithm: 'sliding_window',
          window_seconds: WINDOW_SECONDS,
          limit,
          scope: 'route',
          on_store_failure: policy,
        });
        subjects.push({
          name: `${master === victim ? 'victim' : 'healthy'} ${master} ${policy}`,
          master,
          policy,
          limits: compileRateLimits(tenant, route),
          tally: { allowed: 0, allowedWithoutRedis: 0, limited: 0, unavailable: 0, thrown: 0 },
        });
      }
    }

    const check = async (subject: Subject, limiter: RateLimiter): Promise<void> => {
      try {
        const decision = await limiter.check(subject.limits, {
          tenantId: subject.limits.tenantId,
          routeId: subject.limits.routeId,
          clientIp: '192.0.2.2',
        });
        if (decision.outcome === 'allowed') {
          subject.tally.allowed++;
          if (decision.degraded) subject.tally.allowedWithoutRedis++;
        } else if (decision.outcome === 'limited') subject.tally.limited++;
        else subject.tally.unavailable++;
      } catch {
        subject.tally.thrown++;
      }
    };
    // The run (and its slowest answers) in one aligned window of the sliding-window counter, where the
    // limit bounds admissions exactly: this measures the failover, not a window boundary.
    await withinOneAlignedWindow(WINDOW_SECONDS * 1000, RUN_MS + 10_000);
    const started = performance.now();
    const pending: Array<Promise<void>> = [];
    let sent = 0;
    const load = (async () => {
      while (performance.now() - started < RUN_MS) {
        const due = Math.floor(((performance.now() - started) / 1000) * PER_SECOND);
        for (; sent < due; sent++)
          for (const subject of subjects) pending.push(check(subject, limiters[sent % REPLICAS]!));
        await sleep(10);
      }
    })();

    await sleep(KILL_AT_MS);
    const killedAt = performance.now();
    await killRedisNode(victim);
    // Failover: another node serves the victim's slots and the cluster says ok.
    const probe = subjects.find((s) => s.master === victim)!.limits.tenantId;
    let failoverMs = Number.NaN;
    const survivor = masters[1]!;
    const [host, port] = survivor.split(':');
    const { Redis } = await import('ioredis');
    const observer = new Redis({
      host: host!,
      port: Number(port),
      lazyConnect: true,
      maxRetriesPerRequest: 1,
    });
    await observer.connect();
    try {
      for (let i = 0; i < 600; i++) {
        const info = String(await observer.cluster('INFO'));
        const ownerAddress = await masterOf(observer, `{${probe}}`);
        if (info.includes('cluster_state:ok') && ownerAddress && ownerAddress !== victim) {
          failoverMs = performance.now() - killedAt;
          break;
        }
        await sleep(50);
      }
    } finally {
      observer.disconnect();
    }
    await load;
    await Promise.all(pending);

    const rows = subjects.map((s) => ({
      tenant: s.name,
      limit,
      admitted: s.tally.allowed,
      over_limit: Math.max(0, s.tally.allowed - limit),
      admitted_without_redis: s.tally.allowedWithoutRedis,
      limited: s.tally.limited,
      unavailable_503: s.tally.unavailable,
      thrown: s.tally.thrown,
    }));
    console.info(
      `[redis failover] ${PER_SECOND} checks/s per tenant for ${RUN_MS} ms, master killed at ${KILL_AT_MS} ms, failover (kill → slots served, cluster ok) ` +
        `${failoverMs.toFixed(0)} ms, ${REPLICAS} replicas\n` +
        rows.map((row) => JSON.stringify(row)).join('\n'),
    );

    expect(Number.isFinite(failoverMs), 'the replica was never promoted').toBe(true);
    for (const s of subjects) {
      expect(s.tally.thrown, s.name).toBe(0);
      // Every check was answered.
      const { allowed, limited, unavailable } = s.tally;
      expect(allowed + limited + unavailable, s.name).toBe(sent);
      if (s.policy === 'open') {
        expect(s.tally.unavailable, s.name).toBe(0);
        expect(s.tally.allowed, s.name).toBeLessThanOrEqual(limit + REPLICAS * limit);
        // What was admitted beyond the limit was admitted by the local fallback.
        expect(s.tally.allowed - s.tally.allowedWithoutRedis, s.name).toBeLessThanOrEqual(limit + PER_SECOND);
      } else {
        expect(s.tally.allowedWithoutRedis, s.name).toBe(0);
        expect(s.tally.allowed, s.name).toBeLessThanOrEqual(limit + PER_SECOND);
      }
    }
  }, 120_000);
});
