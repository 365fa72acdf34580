import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { createRedisCachePurger } from '@vantageedge/shared/cache-purge/redis-cache-purger';
import { ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK } from '@vantageedge/shared/net/origin-address-policy';
import { createLogger } from '@vantageedge/shared/observability/logger';
import { createMetricsRegistry } from '@vantageedge/shared/observability/metrics';
import { cacheRedisClientOptions, cacheRedisSettings } from '@vantageedge/shared/redis/cache-redis';
import { createRedisClient, redisSettings, whenReady } from '@vantageedge/shared/redis/client';
import { parseSettings } from '@vantageedge/shared/settings/load-settings';
import { createInMemorySnapshotBus } from '@vantageedge/shared/snapshot-bus/in-memory-snapshot-bus';
import { configPlaneSettings } from '@vantageedge/shared/snapshot-bus/settings';
import {
  createClusterClient,
  deleteClusterKeys,
  killRedisNode,
  masterOf,
  restoreRedisCluster,
  TEST_CLUSTER,
} from '@vantageedge/shared/testing/cluster';
import { TEST_INFRA, uniqueSuffix } from '@vantageedge/shared/testing/infrastructure';
import { createTestRedis, scanKeys } from '@vantageedge/shared/testing/redis';
import type { Cluster, Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectGatewayRedis, type GatewayRedisConnections } from './redis-connections.js';
import { gatewaySettings } from './settings.js';
import { type GatewayReplica, startGatewayReplica } from './start-gateway-replica.js';
import { startTestOrigin, type TestOrigin } from './testing/gateway-harness.js';
import { buildSnapshot } from './testing/snapshots.js';

/**
 * Two gateway replicas laid out as production runs them: rate-limit counters on the single Redis
 * (REDIS_URL), the response cache on its own Redis Cluster (GATEWAY_CACHE_REDIS_CLUSTER_NODES), both
 * connected as `main.ts` connects them (connectGatewayRedis). Each replica keeps its own L1.
 */
const logger = createLogger({ service: 'cache-on-cluster', level: 'error' });
const counters = createTestRedis('cache-on-cluster');
const prefix = counters.prefix;
const suffix = uniqueSuffix();
const cached = { subdomain: `cached${suffix}`, routeId: randomUUID(), originId: randomUUID() };
const limited = { subdomain: `limited${suffix}`, originId: randomUUID() };
const cachedHost = `${cached.subdomain}.localhost`;
const limitedHost = `${limited.subdomain}.localhost`;

interface Answer {
  status: number;
  cache: string;
}

function get(replica: GatewayReplica, host: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port: replica.gateway.trafficPort, path, headers: { host }, agent: false },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, cache: String(res.headers['x-cache'] ?? '') }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function clusterKeys(client: Cluster, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for (const node of client.nodes('master')) found.push(...(await scanKeys(node, pattern)));
  return found;
}

async function until(condition: () => Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function purgesApplied(registry: Registry): Promise<number> {
  const metric = await registry.getSingleMetric('vantageedge_gateway_cache_purges_total')?.get();
  return (metric?.values ?? []).reduce((sum, { value }) => sum + value, 0);
}

/**
 * Replicas subscribed to the purge channel: on any node of the cluster (a Cluster client subscribes on
 * one), or, were the cache wrongly connected, on the single Redis.
 */
async function purgeSubscribers(client: Cluster, single: Redis): Promise<number> {
  const channel = `${prefix}vantageedge:cache:purge`;
  let total = 0;
  for (const node of [...client.nodes('all'), single]) {
    const [, count] = (await node.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
    total += Number(count);
  }
  return total;
}

interface RunningReplica {
  replica: GatewayReplica;
  registry: Registry;
  connections: GatewayRedisConnections;
}

describe('a gateway replica with its counters on one Redis and its cache on a Redis Cluster', () => {
  const bus = createInMemorySnapshotBus();
  const replicas: RunningReplica[] = [];
  let cluster: Cluster;
  let origin: TestOrigin;
  let cachedTenantId = '';
  let limitedTenantId = '';

  async function startReplica(id: string): Promise<RunningReplica> {
    const config = parseSettings(
      { ...redisSettings, ...cacheRedisSettings, ...configPlaneSettings, ...gatewaySettings },
      {
        REDIS_URL: TEST_INFRA.redisUrl,
        GATEWAY_CACHE_REDIS_CLUSTER_NODES: TEST_CLUSTER.redisNodes.join(','),
        // A loaded 2-core test machine: the default 50 ms would bypass lookups for no outage.
        REDIS_COMMAND_TIMEOUT_MS: '1000',
        GATEWAY_REPLICA_ID: id,
        GATEWAY_PORT: '0',
        GATEWAY_ADMIN_PORT: '0',
        GATEWAY_HOST: '127.0.0.1',
        API_KEY_PEPPER: 'cache-on-cluster-pepper-0123456789abcdef0123',
        GATEWAY_REDIS_KEY_PREFIX: prefix,
        ROLLOUT_KEY_PREFIX: `${prefix}rollout:`,
        ORIGIN_BLOCKED_CIDRS: ORIGIN_BLOCKED_CIDRS_ALLOWING_LOOPBACK.join(','),
      },
    );
    const connections = connectGatewayRedis(config, logger);
    await Promise.all([whenReady(connections.redis), whenReady(connections.cacheRedis, 20_000)]);
    const registry = createMetricsRegistry(`gateway-${id}`);
    const replica = await startGatewayReplica({
      config,
      bus,
      redis: connections.redis,
      cacheRedis: connections.cacheRedis,
      registry,
      logger,
    });
    await replica.configPlane.ready;
    await replica.responseCache.prepareTenant(cachedTenantId);
    return { replica, registry, connections };
  }

  beforeAll(async () => {
    cluster = await createClusterClient('cache-on-cluster-observer');
    origin = await startTestOrigin('cache-on-cluster-origin');
    const snapshots = [
      buildSnapshot({
        subdomain: cached.subdomain,
        origins: [{ id: cached.originId, targets: [origin.url] }],
        routes: [
          {
            id: cached.routeId,
            origin_id: cached.originId,
            path_pattern: '/*',
            cache_policy: { ttl_seconds: 600 },
          },
        ],
      }),
      buildSnapshot({
        subdomain: limited.subdomain,
        origins: [{ id: limited.originId, targets: [origin.url] }],
        // One token back every ~17 minutes: once spent, the burst stays spent for the whole test.
        routes: [
          {
            origin_id: limited.originId,
            path_pattern: '/*',
            rate_limit: { requests_per_second: 0.001, burst: 2 },
          },
        ],
      }),
    ];
    cachedTenantId = snapshots[0]!.tenant_id;
    limitedTenantId = snapshots[1]!.tenant_id;
    await bus.publish(
      snapshots.map((snapshot) => ({
        kind: 'snapshot' as const,
        tenantId: snapshot.tenant_id,
        version: BigInt(snapshot.version),
        snapshot,
      })),
    );
    replicas.push(await startReplica('cluster-a'), await startReplica('cluster-b'));
    // A purge published before a replica's SUBSCRIBE holds would reach it only by the 15 s resync.
    await until(async () => (await purgeSubscribers(cluster, counters.client)) >= replicas.length);
  }, 90_000);

  afterAll(async () => {
    for (const { replica, connections } of replicas) {
      await replica.close();
      connections.disconnect();
    }
    await origin?.close();
    await restoreRedisCluster();
    await deleteClusterKeys(cluster, prefix).catch(() => {});
    cluster?.disconnect();
    await counters.cleanup();
  }, 240_000);

  const originRequestsFor = (path: string) => origin.seen.filter((seen) => seen.url === path).length;

  it('serves the second request from the cluster: the other replica, whose L1 is empty, answers HIT', async () => {
    const [a, b] = [replicas[0]!.replica, replicas[1]!.replica];
    const entryKeys = `${prefix}c:{${cachedTenantId}}:*`;
    const onCluster = () => clusterKeys(cluster, entryKeys);
    const onSingle = () => scanKeys(counters.client, entryKeys);
    const tenantKeys = async () => (await onCluster()).length + (await onSingle()).length;
    const before = await tenantKeys();
    expect(await get(a, cachedHost, '/shared')).toEqual({ status: 200, cache: 'MISS' });
    // The fill is written to the store after the response went out.
    await until(async () => (await tenantKeys()) > before);
    expect(await onSingle()).toEqual([]);
    expect(await onCluster()).not.toEqual([]);

    expect(await get(b, cachedHost, '/shared')).toEqual({ status: 200, cache: 'HIT' });
    expect(originRequestsFor('/shared')).toBe(1);
  });

  it('a purge through the control plane’s purger empties the route on every replica', async () => {
    const [a, b] = [replicas[0]!.replica, replicas[1]!.replica];
    // Both paths in both replicas' L1s (b's copies read from the cluster).
    for (const path of ['/purged-on-a', '/purged-on-b']) {
      await get(a, cachedHost, path);
      await until(async () => (await get(b, cachedHost, path)).cache === 'HIT');
      expect(await get(a, cachedHost, path)).toEqual({ status: 200, cache: 'HIT' });
    }
    const applied = await Promise.all(replicas.map(({ registry }) => purgesApplied(registry)));

    // As the control plane's main.ts connects its purger (GATEWAY_CACHE_REDIS_CLUSTER_NODES).
    const controlPlaneCache = createRedisClient({
      ...cacheRedisClientOptions({
        GATEWAY_CACHE_REDIS_CLUSTER_NODES: [...TEST_CLUSTER.redisNodes],
        REDIS_COMMAND_TIMEOUT_MS: 1_000,
        REDIS_CONNECT_TIMEOUT_MS: 2_000,
      })!,
      name: 'control-plane-cache',
    });
    try {
      await whenReady(controlPlaneCache, 20_000);
      const purger = createRedisCachePurger(controlPlaneCache, prefix);
      await purger.purge({ kind: 'route', tenantId: cachedTenantId, routeId: cached.routeId });
    } finally {
      controlPlaneCache.disconnect();
    }
    await Promise.all(
      replicas.map(({ registry }, i) => until(async () => (await purgesApplied(registry)) > applied[i]!)),
    );

    expect(await get(a, cachedHost, '/purged-on-a')).toEqual({ status: 200, cache: 'MISS' });
    expect(await get(b, cachedHost, '/purged-on-b')).toEqual({ status: 200, cache: 'MISS' });
  });

  it('rate limits count on the single Redis, shared by both replicas, with no limit keys on the cluster', async () => {
    const [a, b] = [replicas[0]!.replica, replicas[1]!.replica];
    expect((await get(a, limitedHost, '/x')).status).toBe(200);
    expect((await get(b, limitedHost, '/x')).status).toBe(200);
    expect((await get(a, limitedHost, '/x')).status).toBe(429);
    expect((await get(b, limitedHost, '/x')).status).toBe(429);

    expect(await scanKeys(counters.client, `${prefix}rl:{${limitedTenantId}}:*`)).not.toEqual([]);
    expect(await clusterKeys(cluster, `${prefix}rl:*`)).toEqual([]);
  });

  it('the master holding the tenant’s slot killed: lookups BYPASS, traffic flows, no 5xx; HITs come back after the failover', async () => {
    const [a, b] = [replicas[0]!.replica, replicas[1]!.replica];
    const statuses: number[] = [];
    const outcomes = new Set<string>();
    const victim = await masterOf(cluster, `{${cachedTenantId}}`);
    await killRedisNode(victim);

    let round = 0;
    let hitFromStore = false;
    while (!hitFromStore) {
      round++;
      const path = `/outage-${round}`;
      const first = await get(a, cachedHost, path);
      const second = await get(b, cachedHost, path);
      statuses.push(first.status, second.status);
      outcomes.add(first.cache).add(second.cache);
      // b's L1 never held this path: a HIT there is read from the promoted replica of the dead master.
      hitFromStore = second.cache === 'HIT';
    }
    expect(outcomes.has('BYPASS')).toBe(true);
    expect(statuses.every((status) => status === 200)).toBe(true);
    expect((await get(a, limitedHost, '/x')).status).toBe(429);
  }, 120_000);
});
