import { randomUUID } from 'node:crypto';
import { compileRateLimits } from '@vantageedge/shared/gateway-policies/compile-rate-limits';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { createRedisClient, type RedisClient, whenReady } from '@vantageedge/shared/redis/client';
import {
  createTestRedisCluster,
  masterAddresses,
  masterOf,
  proxiedClusterNodes,
} from '@vantageedge/shared/testing/cluster';
import type { TcpProxy } from '@vantageedge/shared/testing/tcp-proxy';
import { afterAll, describe, expect, it } from 'vitest';
import { createRateLimiter, type RateLimitIdentity } from './rate-limiter.js';
import { RedisLimitStore } from './redis-limit-store.js';
import { routeWith, tenantWith } from './test-fixtures.js';

/**
 * One Redis Cluster master stops answering (every connection to it blackholed, new ones refused: a
 * partition, or a master too overloaded to answer within the command timeout). The tenants whose slots
 * it serves degrade per their `on_store_failure`; the tenants on the other masters keep being decided by
 * Redis. The cluster's own nodes are never touched: the limiter reaches them through TCP proxies (natMap).
 */
const logger = createLogger({ service: 'test', level: 'error' });
const redis = await createTestRedisCluster('rl-per-master');
const proxies = new Map<string, TcpProxy>();
const clients: RedisClient[] = [];

afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all([...proxies.values()].map((proxy) => proxy.close()));
  await redis.cleanup();
});

/** A tenant id whose `{tenant}` hash tag lives on `master`. */
async function tenantOn(master: string): Promise<string> {
  for (;;) {
    const id = randomUUID();
    if ((await masterOf(redis.client, `${redis.prefix}rl:{${id}}:x`)) === master) return id;
  }
}

describe('the rate limiter on a Redis Cluster with one master unanswering', () => {
  it('keeps deciding the other masters’ tenants by Redis; only that master’s tenants degrade', async () => {
    const { natMap, seeds, proxyOf } = await proxiedClusterNodes([]);
    for (const [node, proxy] of proxyOf) proxies.set(node, proxy);
    const client = createRedisClient({
      clusterNodes: seeds,
      natMap,
      // Generous: this tests which tenants are decided by Redis on a loaded machine, not latency.
      commandTimeoutMs: 500,
      connectTimeoutMs: 2_000,
      name: 'rl-per-master',
    });
    clients.push(client);
    client.on('error', () => {});
    await whenReady(client, 20_000);
    const limiter = createRateLimiter({
      store: new RedisLimitStore(client),
      registry: createMetricsRegistry('rl-per-master', { defaultMetrics: false }),
      logger,
      keyPrefix: redis.prefix,
      circuitFailures: 3,
      // Open circuits stay open for the whole test: no trial call lets a tenant through by chance.
      halfOpenAfterMs: 120_000,
    });

    const [troubled, healthy] = await masterAddresses(redis.client);
    const BURST = 3;
    // Fail-closed token buckets that barely refill: Redis alone knows their count, and without it
    // every check answers "store unavailable" (a 503).
    const limitsOf = (tenantId: string) =>
      compileRateLimits(
        tenantWith(null, tenantId as ReturnType<typeof randomUUID>),
        routeWith({ requests_per_second: 0.001, burst: BURST, scope: 'route', on_store_failure: 'closed' }),
      );
    const onTroubled = limitsOf(await tenantOn(troubled!));
    const onHealthy = limitsOf(await tenantOn(healthy!));
    const check = (limits: ReturnType<typeof limitsOf>) => {
      const identity: RateLimitIdentity = {
        tenantId: limits.tenantId,
        routeId: limits.routeId,
        clientIp: '192.0.2.7',
      };
      return limiter.check(limits, identity).then((decision) => decision.outcome);
    };

    // Both tenants are decided by Redis, over connections open to every master.
    expect(await check(onTroubled)).toBe('allowed');
    expect(await check(onHealthy)).toBe('allowed');

    const troubledProxy = proxies.get(troubled!)!;
    troubledProxy.refuseConnections(true);
    troubledProxy.blackholeOpenConnections();

    // The troubled master's tenant fails closed, as documented: enough failed calls to open a circuit.
    for (let i = 0; i < 5; i++) expect(await check(onTroubled)).toBe('store_unavailable');

    // The healthy master's tenant is still counted by Redis: the rest of its burst, then refused.
    const healthyOutcomes: string[] = [];
    for (let i = 0; i < BURST + 1; i++) healthyOutcomes.push(await check(onHealthy));
    expect(healthyOutcomes).toEqual(['allowed', 'allowed', 'limited', 'limited']);
    expect(limiter.storeDegraded).toBe(true);
  }, 90_000);
});
